"""The processing model and the astronomy: DataObject (a persistent object with a file),
ProcessTarget (get/make/plan/lineage), the DPU that executes plans (serial, Dask), the
concrete data products, instruments, the pure-numpy imaging algorithms, the simulator.

Imports point downwards only: `targets` may import `persistence` and `dataserver`,
never `awe`.

The imaging chain: `ingest` makes raw frames (`targets.raw`) and reference catalogues;
`MasterBias`, `HotPixelMap`, `MasterFlat` and `ColdPixelMap` (`targets.calibration`)
calibrate a chip's night; `CalibratedExposure` is one chip of a science exposure,
calibrated and solved; `NightReport` reduces a whole night. `Coadd` stacks exposures
regridded onto one grid (`RegriddedFrame`). `SourceList` holds an exposure's sources
(`CoaddSourceList` a coadd's) as `Source` rows, cone-searchable through `targets.sky`;
`Object` associates them across lists (`targets.object`). The algorithms are in
`targets.imaging`, the instruments in `targets.instruments`, the simulator in
`targets.simulator`.
"""

from .dataobject import DataObject, data_client, global_filename, set_data_client
from .dependency import Dependency, dependency
from .dpu import DaskDPU, Progress, SerialDPU
from .errors import (AstrometryError, InstrumentError, MakeError, MissingInputError,
                     PhotometryError, TargetError)
from .lineage import Lineage, LineageEdge
from .parameters import ProcessParameters
from .plan import (MISSING_INPUT, NOT_CHECKED, OUTDATED, TO_BE_BUILT, UP_TO_DATE, Node,
                   Plan)
from .process import (CalibrationTarget, ProcessTarget, Reproduction, set_project_parameters,
                      using_project_parameters)
from .quality import QualityFlag
from .raw import (Chip, RawBiasFrame, RawDarkFrame, RawFlatFrame, RawFrame,  # noqa: I001
                  RawScienceFrame)
from .reference import ReferenceCatalogue
from .ingest import IngestReport, ingest
from .calibration import ColdPixelMap, HotPixelMap, MasterBias, MasterFlat
from .calibrated_exposure import CalibratedExposure
from .night_report import NightReport
from .coadd import Coadd, RegriddedFrame
from .source_list import CoaddSourceList, Source, SourceList
from .object import Association, Object, ObjectPhotometry, associate
from .curation import AuditRecord, PermissionDenied
from .request import ProcessingRequest
from .jobs import Job, JobCancelled, JobRunner, cancel_job, run_job, submit_job

__all__ = [
    "Association",
    "AstrometryError",
    "AuditRecord",
    "CalibratedExposure",
    "CalibrationTarget",
    "Chip",
    "Coadd",
    "CoaddSourceList",
    "ColdPixelMap",
    "DaskDPU",
    "DataObject",
    "Dependency",
    "HotPixelMap",
    "IngestReport",
    "Job",
    "JobCancelled",
    "JobRunner",
    "InstrumentError",
    "Lineage",
    "LineageEdge",
    "MISSING_INPUT",
    "MakeError",
    "MasterBias",
    "MasterFlat",
    "MissingInputError",
    "NOT_CHECKED",
    "NightReport",
    "Node",
    "OUTDATED",
    "PermissionDenied",
    "Object",
    "ObjectPhotometry",
    "PhotometryError",
    "Plan",
    "ProcessingRequest",
    "ProcessParameters",
    "ProcessTarget",
    "Progress",
    "QualityFlag",
    "RawBiasFrame",
    "RawDarkFrame",
    "RawFlatFrame",
    "RawFrame",
    "RawScienceFrame",
    "ReferenceCatalogue",
    "RegriddedFrame",
    "Reproduction",
    "SerialDPU",
    "Source",
    "SourceList",
    "TO_BE_BUILT",
    "TargetError",
    "UP_TO_DATE",
    "associate",
    "cancel_job",
    "data_client",
    "dependency",
    "global_filename",
    "ingest",
    "run_job",
    "set_data_client",
    "set_project_parameters",
    "submit_job",
    "using_project_parameters",
]

"""The processing model and the astronomy: DataObject (a persistent object with a file),
ProcessTarget (get/make/plan/lineage), the DPU that executes plans (serial, Dask), the
concrete data products, instruments, the pure-numpy imaging algorithms, the simulator.

Imports point downwards only: `targets` may import `persistence` and `dataserver`,
never `awe`. So far it holds `DataObject`, and `ProcessTarget` with planning and the
serial DPU.
"""

from .dataobject import DataObject, data_client, global_filename, set_data_client
from .dependency import Dependency, dependency
from .dpu import DaskDPU, Progress, SerialDPU
from .errors import InstrumentError, MakeError, MissingInputError, TargetError
from .lineage import Lineage, LineageEdge
from .parameters import ProcessParameters
from .plan import (MISSING_INPUT, NOT_CHECKED, OUTDATED, TO_BE_BUILT, UP_TO_DATE, Node,
                   Plan)
from .process import CalibrationTarget, ProcessTarget, Reproduction, set_project_parameters

__all__ = [
    "MISSING_INPUT",
    "NOT_CHECKED",
    "OUTDATED",
    "TO_BE_BUILT",
    "UP_TO_DATE",
    "CalibrationTarget",
    "DaskDPU",
    "DataObject",
    "Dependency",
    "InstrumentError",
    "Lineage",
    "LineageEdge",
    "MakeError",
    "MissingInputError",
    "Node",
    "Plan",
    "ProcessParameters",
    "ProcessTarget",
    "Progress",
    "Reproduction",
    "SerialDPU",
    "TargetError",
    "data_client",
    "dependency",
    "global_filename",
    "set_data_client",
    "set_project_parameters",
]

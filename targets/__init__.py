"""The processing model and the astronomy: DataObject (a persistent object with a file),
ProcessTarget (get/make/plan/lineage), the DPU that executes plans (serial, Dask), the
concrete data products, instruments, the pure-numpy imaging algorithms, the simulator.

Imports point downwards only: `targets` may import `persistence` and `dataserver`,
never `awe`. So far it holds `DataObject`.
"""

from .dataobject import DataObject, data_client, global_filename, set_data_client

__all__ = ["DataObject", "data_client", "global_filename", "set_data_client"]

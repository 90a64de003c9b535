"""The Dask DPU on a LocalCluster makes the same products as the serial one."""

import datetime

import pytest

import dataserver
import targets
from targets import DaskDPU, MakeError, SerialDPU
from tests.targets.engine_models import ToyBias, ToyReduced, ToySensor, ToyStack, ingest

NIGHT = datetime.datetime(2024, 3, 17)


def observe(tmp_path, name):
    """A chip with two nights of 3 biases and 3 science frames each."""
    chip = ToySensor(name=name)
    chip.commit()
    for night in range(2):
        start = NIGHT + datetime.timedelta(days=night)
        for i in range(3):
            ingest(tmp_path, "bias", chip, start + datetime.timedelta(minutes=i), 100 + i)
            ingest(tmp_path, "science", chip, start + datetime.timedelta(hours=1, minutes=i),
                   500 + 10 * i + night)
    return chip


def made_for(chip):
    """The checksums of what was made for ``chip``, by class."""
    stack = ToyStack.get(chip=chip)  # already made: finds it
    return {"stack": stack.checksum,
            "reduced": sorted(f.checksum for f in stack.frames),
            "bias": sorted({f.bias.checksum for f in stack.frames})}


def test_dask_makes_what_the_serial_dpu_makes(db, tmp_path):
    targets.set_data_client(dataserver.Client(tmp_path / "files"))
    try:
        serial_chip, dask_chip = observe(tmp_path, "ccd50"), observe(tmp_path, "ccd51")
        ToyStack.get(chip=serial_chip, dpu=SerialDPU())
        plan = ToyStack.plan(chip=dask_chip)
        assert len(plan.to_make()) == 1 + 6 + 2
        with DaskDPU(n_workers=2) as dpu:
            stack = ToyStack.get(chip=dask_chip, dpu=dpu)
        assert stack.is_committed and len(stack.lineage()) == 1 + 6 + 2 + 12
        assert made_for(dask_chip) == made_for(serial_chip)
        assert len(ToyBias.all()) == 4 and len(ToyReduced.all()) == 12
    finally:
        targets.set_data_client(None)


def test_a_make_failing_on_a_worker_is_reported_and_leaves_nothing(db, tmp_path, monkeypatch):
    targets.set_data_client(dataserver.Client(tmp_path / "files"))
    monkeypatch.setenv("AWE_TEST_FAIL", "ToyReduced")  # workers inherit the environment
    try:
        chip = observe(tmp_path, "ccd50")
        with (DaskDPU(n_workers=2) as dpu,
              pytest.raises(MakeError, match="making ToyReduced.*NaN in the science frame")
              as caught):
            ToyStack.get(chip=chip, dpu=dpu)
        assert isinstance(caught.value.original, ValueError)
        assert len(ToyReduced.all()) == 0 and len(ToyStack.all()) == 0
        assert targets.data_client().list("ToyReduced") == []
        assert len(ToyBias.all()) == 2, "the biases that finished are kept"
    finally:
        targets.set_data_client(None)


def test_one_dask_dpu_serves_every_get_until_closed(db, tmp_path):
    targets.set_data_client(dataserver.Client(tmp_path / "files"))
    try:
        chips = [observe(tmp_path, name) for name in ("ccd50", "ccd51", "ccd52")]
        with DaskDPU(n_workers=1) as dpu:
            ToyStack.get(chip=chips[0], dpu=dpu)
            workers = set(dpu._local.result().scheduler_info["workers"])
            ToyStack.get(chip=chips[1], dpu=dpu)
            assert set(dpu._local.result().scheduler_info["workers"]) == workers
        assert dpu._local.result().status.name == "closed"
        with pytest.raises(RuntimeError, match="this DaskDPU is closed; make a new one"):
            ToyStack.get(chip=chips[2], dpu=dpu)
        assert len(ToyStack.all()) == 2
    finally:
        targets.set_data_client(None)


def test_a_dropped_dask_dpu_stops_its_cluster():
    dpu = DaskDPU(n_workers=1)
    starting = dpu._local
    del dpu  # the last reference: the DPU is finalized and its cluster closed
    assert starting.result().status.name == "closed"


def test_local_workers_are_configured_for_making_products(monkeypatch):
    """Dask's default MALLOC_TRIM_THRESHOLD_ makes every large temporary array cost
    fresh page faults (40% slower products), and its dashboard housekeeping (stack
    sampling every 10 ms) takes CPU from the products: the DPU's local workers go
    without both, and import the pipeline as they start."""
    import os
    import sys

    import dask

    from targets.dpu import _local_cluster

    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    with _local_cluster(1) as cluster, cluster.get_client() as client:
        settings = client.run(lambda: (os.environ.get("MALLOC_TRIM_THRESHOLD_"),
                                       dask.config.get("distributed.worker.profile.enabled"),
                                       dask.config.get("distributed.admin.tick.interval"),
                                       "targets.imaging.reduce" in sys.modules))
    assert list(settings.values()) == [(None, False, "1s", True)]
    assert "MALLOC_TRIM_THRESHOLD_" not in os.environ, "nor does the nanny set it here"
    assert dask.config.get("distributed.worker.profile.enabled"), "this process keeps Dask's"

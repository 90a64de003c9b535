"""The work behind ``awe demo``: a simulated night, ingested and reduced end to end."""

import json

import persistence
import targets
from targets.simulator import simulate

from ..config import awe_home
from ..environment import connect, make_dpu

__all__ = ["run_demo"]


def run_demo(*, chips=2, size=(1024, 1024), seed=1, dask=None, progress=None):
    """Simulate a night of SIMCAM in ``$AWE_HOME/demo``, ingest it and get its
    `targets.NightReport`, in the configured database and data store.

    Running it again reuses the simulation (the same seed gives the same files), ingests
    nothing new and makes nothing: everything is up to date.

    Returns
    -------
    report : `targets.NightReport`
    """
    connect()
    # Made first, a Dask DPU's local cluster starts while the night is simulated and
    # ingested.
    with make_dpu(dask) as dpu:
        out = awe_home() / "demo" / f"simcam-{chips}x{size[0]}x{size[1]}-seed{seed}"
        parameters = out / "truth" / "parameters.json"
        if parameters.is_file():
            nights = [json.loads(parameters.read_text())["start"]]
            raw = sorted(str(p) for p in (out / "raw").glob("*/*.fits"))
            reference = str(out / "reference" / "reference.ecsv")
        else:
            sim = simulate(out, chips=chips, size=size, seed=seed, fields=1, dithers=2,
                           star_density=40.0, overwrite=True, progress=progress)
            nights = [n.isoformat() for n in sim.nights]
            raw, reference = sim.raw, sim.reference
        report = targets.ingest(raw + [reference])
        if report.failed:
            raise ValueError(f"the simulated night did not ingest: {report}; remove "
                             f"{out} and run awe demo again")
        return targets.NightReport.get(instrument="SIMCAM", night=nights[0], dpu=dpu), out


def describe(report, out):
    """Lines for the terminal: where things are, and the night's table."""
    table = report.table()
    columns = ["chip", "filter", "object", "seeing", "astrometric_rms", "n_reference_stars",
               "zeropoint", "zeropoint_error", "quality_flags"]
    for name in ("seeing", "astrometric_rms", "zeropoint", "zeropoint_error"):
        table[name].format = ".3f"
    lines = [f"simulated night: {out}",
             f"night report:    NightReport {report.object_id} ({report.filename}): "
             f"{report.n_exposures} calibrated exposures, {report.n_flagged} flagged",
             ""]
    lines += table[columns].pformat(max_lines=-1, max_width=-1)
    lines += ["", f"database: {persistence.current_database().display_url}"]
    return lines

"""The work behind ``awe demo``: simulated nights ingested and reduced end to end, down
to source lists and the objects they make."""

import dataclasses
import datetime
import json
import sys
from pathlib import Path

import numpy as np

import persistence
import targets
from targets.curation import awaiting_review, awaits_review
from targets.simulator import simulate

from ..config import awe_home, data_servers
from ..environment import connect, make_dpu

__all__ = ["Demo", "describe", "run_demo"]


@dataclasses.dataclass
class Demo:
    """What ``awe demo`` made: where, each night's report, the source lists, and the
    objects they were associated into."""

    out: Path
    reports: list
    source_lists: list
    n_objects: int
    most_variable: object


def run_demo(*, chips=2, size=(1024, 1024), seed=1, nights=1, dask=None, progress=None,
             on_source_list=None):
    """Simulate nights of SIMCAM in ``$AWE_HOME/demo``, ingest them, get each night's
    `targets.NightReport` (the calibrated exposures and their calibrations) and the
    `targets.SourceList` of every science frame, and associate the lists into objects,
    in the configured database and data store.

    Running it again reuses the simulation (the same seed gives the same files), ingests
    nothing new and makes nothing: everything is up to date.

    ``progress(done, total, path)`` follows the simulation and ``on_source_list(done,
    total)`` the source lists.
    """
    connect()
    # Made first, a Dask DPU's local cluster starts while the night is simulated and
    # ingested.
    with make_dpu(dask) as dpu:
        name = f"simcam-{chips}x{size[0]}x{size[1]}-seed{seed}"
        out = awe_home() / "demo" / (name + (f"-{nights}nights" if nights > 1 else ""))
        parameters = out / "truth" / "parameters.json"
        if parameters.is_file():
            start = datetime.date.fromisoformat(json.loads(parameters.read_text())["start"])
            dates = [(start + datetime.timedelta(days=k)).isoformat() for k in range(nights)]
            raw = sorted(str(p) for p in (out / "raw").glob("*/*.fits"))
            reference = str(out / "reference" / "reference.ecsv")
        else:
            sim = simulate(out, nights=nights, chips=chips, size=size, seed=seed, fields=1,
                           dithers=2, star_density=40.0, overwrite=True, progress=progress)
            dates = [n.isoformat() for n in sim.nights]
            raw, reference = sim.raw, sim.reference
        report = targets.ingest(raw + [reference])
        if report.failed:
            raise ValueError(f"the simulated night did not ingest: {report}; remove "
                             f"{out} and run awe demo again")
        reports = [targets.NightReport.get(instrument="SIMCAM", night=date, dpu=dpu)
                   for date in dates]
        exposures = [e for r in reports for e in r.exposures]
        source_lists = []
        for done, exposure in enumerate(exposures, 1):
            if awaits_review(exposure):  # a person looks at it first
                print(awaiting_review(exposure), file=sys.stderr)
            else:
                source_lists.append(targets.SourceList.get(raw=exposure.raw, dpu=dpu))
            if on_source_list is not None:
                on_source_list(done, len(exposures))
    for source_list in sorted(source_lists, key=lambda s: (s.mjd, s.object_id)):
        targets.associate(source_list)
    objects = targets.Object.n_detections > 1
    return Demo(out, reports, source_lists, targets.Object.all().count(),
                objects.order_by("eta", descending=True).first())


def describe(demo):
    """Lines for the terminal: where everything is, each night's table, the source lists
    and the objects."""
    lines = [f"simulated nights:  {demo.out}",
             f"database:          {persistence.current_database().display_url}",
             f"files:             {', '.join(data_servers())}",
             ""]
    columns = ["chip", "filter", "object", "seeing", "astrometric_rms", "n_reference_stars",
               "zeropoint", "zeropoint_error", "quality_flags"]
    for report in demo.reports:
        table = report.table()
        for name in ("seeing", "astrometric_rms", "zeropoint", "zeropoint_error"):
            table[name].format = ".3f"
        lines += [f"night {report.night}: NightReport {report.object_id} "
                  f"({report.filename}): {report.n_exposures} calibrated exposures, "
                  f"{report.n_flagged} flagged", ""]
        lines += table[columns].pformat(max_lines=-1, max_width=-1) + [""]
    n_sources = [s.n_sources for s in demo.source_lists]
    limits = [s.limiting_mag for s in demo.source_lists if np.isfinite(s.limiting_mag or np.nan)]
    lines.append(f"source lists:      {len(demo.source_lists)}, {sum(n_sources):,} sources "
                 f"({min(n_sources)} to {max(n_sources)} each; 5-sigma limits "
                 f"{min(limits):.2f} to {max(limits):.2f} mag)")
    lines.append(f"objects:           {demo.n_objects:,} (sources associated across the "
                 "exposures)")
    best = demo.most_variable
    if best is not None:
        lines.append(f"most variable:     Object {best.object_id} at ra {best.ra:.5f}, dec "
                     f"{best.dec:.5f}: eta {best.eta:.1f}, V {best.v:.2f} in "
                     f"{best.variability_filter}, {best.n_detections} detections")
    lines += ["", "Next: awe (the awe> prompt), awe query \"SourceList.all()\", "
                  "awe show ID --png preview.png; see examples/tutorial.rst"]
    return lines

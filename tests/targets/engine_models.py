"""Small purpose-built targets for the engine tests: raw frames, a master bias (a
calibration with a parameter) and a reduced frame that needs both.

Files hold a few numbers as text, so a make is quick and its output deterministic.
"""

import datetime
import json
import os
import time

from persistence import DBObject, persistent
from targets import (CalibrationTarget, DataObject, ProcessParameters, ProcessTarget,
                     QualityFlag, dependency)
from targets.quality import flags


class ToySensor(DBObject):
    name = persistent("ToySensor name", str, "")


class ToyExposure(DataObject):
    """A raw frame: ingested, never made."""

    kind = persistent("'bias' or 'science'", str, "")
    chip = persistent("ToySensor", ToySensor, None)
    date_obs = persistent("Start of the exposure (UTC)", datetime.datetime, None)
    usable = persistent("False once a calibration scientist rejects the frame", bool, True,
                        mutable=True)


class ToyBiasParameters(ProcessParameters):
    clip = persistent("Clipping threshold [sigma]", float, 3.0)
    max_level = persistent("verify(): highest level before it is flagged", float, 1e9)


def _night_biases(selectors):
    start, end = ToyBias.validity_window(selectors)
    return ((ToyExposure.kind == "bias") & (ToyExposure.chip == selectors["chip"])
            & (ToyExposure.date_obs >= start) & (ToyExposure.date_obs < end)
            & (ToyExposure.usable == True))  # noqa: E712 (a query, not a test)


class ToyBias(CalibrationTarget):
    SELECTORS = ("chip", "time")
    Parameters = ToyBiasParameters
    filename_prefix = "Bias"

    QUALITY_FLAGS = flags(QualityFlag(1, "level", "level above max_level"))

    chip = persistent("ToySensor", ToySensor, None)
    raw_biases = dependency("The night's bias frames", ToyExposure, many=True, query=_night_biases)

    fail = False
    """Set by a test to make make() raise."""
    make_seconds = 0.0
    """Set by a test to make make() slow, so that two processes overlap."""

    def make(self, workdir):
        if type(self).fail:
            raise RuntimeError("the bias frames are all saturated")
        time.sleep(type(self).make_seconds)
        values = [float(frame.retrieve().read_text()) for frame in self.raw_biases]
        return write(workdir, {"level": sum(values) / len(values),
                               "clip": self.process_parameters.clip})

    def verify(self, path):
        level = json.loads(path.read_text())["level"]
        self.quality_flags = self.flag_bits(level=level > self.process_parameters.max_level)


class ToyReduced(ProcessTarget):
    SELECTORS = ("raw",)

    raw = dependency("The science frame", ToyExposure,
                     query=lambda s: ToyExposure.object_id == s["raw"].object_id)
    bias = dependency("The bias to subtract", ToyBias,
                      selectors=lambda s: {"chip": s["raw"].chip, "time": s["raw"].date_obs})

    fail = False
    """Set by a test to make make() raise; $AWE_TEST_FAIL=ToyReduced does the same in
    Dask workers, which are other processes."""

    def make(self, workdir):
        if type(self).fail or os.environ.get("AWE_TEST_FAIL") == type(self).__name__:
            raise ValueError("NaN in the science frame")
        level = json.loads(self.bias.retrieve().read_text())["level"]
        return write(workdir, {"value": float(self.raw.retrieve().read_text()) - level})


def write(workdir, content):
    path = workdir / "product.json"
    path.write_text(json.dumps(content, sort_keys=True))
    return path


def ingest(tmp_path, kind, chip, date_obs, value):
    """Store a raw frame holding ``value`` and commit it."""
    path = tmp_path / f"raw-{kind}-{chip.name}-{date_obs:%Y%m%dT%H%M%S}-{value}.txt"
    path.write_text(str(value))
    frame = ToyExposure(kind=kind, chip=chip, date_obs=date_obs)
    frame.store(path)
    frame.commit()
    return frame


class ToyStack(ProcessTarget):
    """A product of every science frame of a chip: a deep lineage for the tests."""

    SELECTORS = ("chip",)

    chip = persistent("Detector", ToySensor, None)
    frames = dependency("The reduced frames", ToyReduced, many=True,
                        selectors=lambda s: [{"raw": raw} for raw in sorted(
                            (ToyExposure.kind == "science") & (ToyExposure.chip == s["chip"]),
                            key=lambda raw: raw.object_id)])

    def make(self, workdir):
        values = [json.loads(frame.retrieve().read_text())["value"] for frame in self.frames]
        return write(workdir, {"sum": sum(values)})

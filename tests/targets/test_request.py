"""Processing requests: a selection of raw data turned into targets, planned as one
graph; target specs that name a node across processes. On both databases."""

import json

import pytest

from targets import UP_TO_DATE, ProcessingRequest
from targets.calibration import MasterBias
from targets.calibrated_exposure import CalibratedExposure
from targets.ingest import ingest
from targets.plan import target_from_spec, target_spec
from targets.raw import RawBiasFrame, RawScienceFrame


@pytest.fixture
def night(store, simulated_night):
    """The simulated night's calibration frames and science frames, ingested."""
    ingest(simulated_night.raw)
    return simulated_night


def test_a_calibration_request_asks_for_one_per_chip_and_night(night):
    targets = ProcessingRequest("MasterBias", instrument="SIMCAM").targets()
    chips = sorted({f.chip.name for f in RawBiasFrame.all()})
    assert [s["chip"].name for _, s in targets] == chips == ["ccd1", "ccd2"]
    for cls, selectors in targets:
        assert cls is MasterBias
        first = (RawBiasFrame.chip == selectors["chip"]).min("date_obs")
        # The time is the night's first raw frame of any kind (the darks, the biases).
        assert selectors["time"] <= first.date_obs
    only = ProcessingRequest("MasterBias", chip="ccd2").targets()
    assert [s["chip"].name for _, s in only] == ["ccd2"]


def test_flats_are_asked_for_per_filter_and_share_their_bias_in_the_plan(night):
    request = ProcessingRequest("MasterFlat", chip="ccd1")
    targets = request.targets()
    assert sorted(s["filter"] for _, s in targets) == ["g", "r"]
    plan = request.plan()
    assert len(plan.roots) == 2
    biases = [n for n in plan.graph if n.cls is MasterBias]
    assert len(biases) == 1, "both flats of the night use one master bias node"
    assert {n.state for n in plan.graph} == {"to be built"}
    data = plan.to_json()
    assert sorted(data["nodes"][i]["class"] for i in data["roots"]) == ["MasterFlat"] * 2


def test_exposures_are_selected_by_filter_nights_and_position(night):
    frames = list((RawScienceFrame.filter == "r") & (RawScienceFrame.chip.name == "ccd1"))
    targets = ProcessingRequest("CalibratedExposure", chip="ccd1", filter="r",
                                first_night=frames[0].night,
                                last_night=frames[0].night).targets()
    assert [s["raw"] for _, s in targets] == frames
    assert all(cls is CalibratedExposure for cls, _ in targets)
    frame = frames[0]
    ra = sum(frame.footprint[::2]) / 4
    dec = sum(frame.footprint[1::2]) / 4
    near = ProcessingRequest("SourceList", ra=ra, dec=dec, radius=0.001).targets()
    assert frame in [s["raw"] for _, s in near]
    assert all(s["raw"].covers(ra, dec, 0.001 + 1 / 60) for _, s in near)


def test_selections_a_class_does_not_take_are_dropped(night):
    request = ProcessingRequest("MasterBias", filter="r", ra=10.0, dec=5.0, radius=1.0)
    assert (request.filter, request.ra, request.radius) == ("", None, None)
    assert len(request.targets()) == 2


@pytest.mark.parametrize("values, message", [
    (dict(target="Flat"), "cannot be requested"),
    (dict(target="MasterBias", first_night="11/03/2024"), "not a date"),
    (dict(target="MasterBias", first_night="2024-03-12", last_night="2024-03-11"),
     "the last is before the first"),
    (dict(target="Coadd", filter="r"), "needs a position"),
    (dict(target="Object", ra=10.0, dec=5.0), "needs a radius"),
    (dict(target="Object", ra=400.0, dec=5.0, radius=1.0), "not on the sky"),
    (dict(target="MasterBias", depth=-1), "depth"),
    (dict(target="MasterFlat", pars={"sigma_clip": 2.5}), "did you mean sigma"),
    (dict(target="MasterFlat", pars={"sigma": "high"}), "sigma"),
])
def test_bad_requests_fails(values, message):
    with pytest.raises(ValueError, match=message):
        ProcessingRequest(**values)


def test_a_selection_that_finds_nothing_says_so_fails(night):
    with pytest.raises(ValueError, match="no raw data matches MasterBias.*chip=ccd9"):
        ProcessingRequest("MasterBias", chip="ccd9").targets()


def test_a_request_survives_json_and_its_ticked_nodes_name_targets(night):
    request = ProcessingRequest("MasterFlat", chip="ccd1", pars={"sigma": 2.5})
    again = ProcessingRequest.from_json(request.to_json())
    assert again == request
    plan = request.plan()
    bias = next(n for n in plan.graph if n.cls is MasterBias)
    spec = json.loads(json.dumps(target_spec(bias.cls, bias.selectors)))
    assert target_from_spec(spec) == (MasterBias, bias.selectors)
    ticked = ProcessingRequest("MasterFlat", only=[spec])
    assert ticked.targets() == [(MasterBias, bias.selectors)]
    ticked.plan()  # plannable as it stands
    MasterBias.get(**bias.selectors)
    assert ticked.plan().root.state == UP_TO_DATE


@pytest.mark.parametrize("spec, message", [
    ({"class": "Nothing", "selectors": {}}, "not a target"),
    ({"class": "RawBiasFrame", "selectors": {}}, "not a target that can be made"),
    ({"class": "MasterBias", "selectors": {"chip": {"id": 2 ** 70}, "time": None}},
     "not an object id"),
    ({"class": "MasterBias", "selectors": {"chip": {"id": 999999}, "time": None}},
     "no DBObject with object_id 999999"),
    ({"class": "MasterBias", "selectors": {"chip": [1, 2]}}, "not a selector value"),
    ({"class": "MasterBias", "selectors": {"time": {"time": "2024-03-12"}}},
     "missing: chip"),
    ("MasterBias", "not a target"),
    ({"class": "MasterBias", "selectors": {"chip": 5, "time": {"time": "2024-03-12"}}},
     r"chip \(The chip\) expects Chip, got int 5"),
    ({"class": "MasterBias", "selectors": {"chip": None, "time": "yesterday"}},
     "time must be a date-time"),
])
def test_bad_target_specs_fails(store, spec, message):
    with pytest.raises(ValueError, match=message):
        target_from_spec(spec)


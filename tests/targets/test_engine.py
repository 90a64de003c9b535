"""Target processing: get(), plan(), states and the reasons for them, on both databases."""

import datetime

import pytest

import dataserver
import targets
from targets import (MISSING_INPUT, NOT_CHECKED, OUTDATED, TO_BE_BUILT, UP_TO_DATE,
                     MakeError, MissingInputError)
from targets.curation import set_valid
from tests.targets.engine_models import ToySensor, ToyExposure, ToyBias, ToyReduced, ingest

NIGHT = datetime.datetime(2024, 3, 17, 0, 0)


@pytest.fixture
def night(db, tmp_path):
    """One chip, three biases and a science frame of the night of 2024-03-16/17."""
    targets.set_data_client(dataserver.Client(tmp_path / "files"))
    chip = ToySensor(name="ccd50")
    chip.commit()
    biases = [ingest(tmp_path, "bias", chip, NIGHT + datetime.timedelta(minutes=i), 100 + i)
              for i in range(3)]
    science = ingest(tmp_path, "science", chip, NIGHT + datetime.timedelta(hours=2), 500)
    yield {"chip": chip, "biases": biases, "science": science, "tmp": tmp_path}
    targets.set_data_client(None)
    ToyBias.fail = ToyReduced.fail = False


def states(plan):
    return {node.cls.__name__: node.state for node in plan}


def test_get_makes_the_chain_then_finds_it(night):
    reduced = ToyReduced.get(raw=night["science"])
    assert reduced.is_committed
    assert list(reduced.bias.raw_biases) == night["biases"]
    assert reduced.retrieve().read_text() == '{"value": 399.0}'
    again = ToyReduced.get(raw=night["science"])
    assert again == reduced
    assert len(ToyReduced.all()) == 1 and len(ToyBias.all()) == 1


def test_plan_before_and_after(night):
    plan = ToyReduced.plan(raw=night["science"])
    assert states(plan) == {"ToyReduced": TO_BE_BUILT, "ToyBias": TO_BE_BUILT}
    assert len(ToyReduced.all()) == 0, "planning makes nothing"
    ToyReduced.get(raw=night["science"])
    plan = ToyReduced.plan(raw=night["science"])
    assert states(plan) == {"ToyReduced": UP_TO_DATE, "ToyBias": UP_TO_DATE}
    text = str(plan)
    assert "ToyReduced(raw=ToyExposure" in text and "[up to date]" in text
    assert "bias: ToyBias(chip=ccd50, time=2024-03-17T02:00:00) [up to date]" in text
    data = plan.to_json()
    assert {n["state"] for n in data["nodes"]} == {UP_TO_DATE}
    assert [e["role"] for e in data["edges"]] == ["bias"]


def test_added_raw_frame_outdates_the_calibration_and_what_used_it(night):
    first = ToyReduced.get(raw=night["science"])
    extra = ingest(night["tmp"], "bias", night["chip"], NIGHT + datetime.timedelta(minutes=9), 106)
    plan = ToyReduced.plan(raw=night["science"])
    bias_node = next(n for n in plan if n.cls is ToyBias)
    assert bias_node.state == OUTDATED
    assert bias_node.reasons == [f"raw_biases changed: added ToyExposure {extra.object_id}"]
    assert plan.root.state == OUTDATED
    assert plan.root.reasons == ["bias: ToyBias(chip=ccd50, time=2024-03-17T02:00:00) "
                                 "is outdated"]
    second = ToyReduced.get(raw=night["science"])
    assert second != first
    assert list(second.bias.raw_biases) == night["biases"] + [extra]
    assert states(ToyReduced.plan(raw=night["science"])) == {
        "ToyReduced": UP_TO_DATE, "ToyBias": UP_TO_DATE}


def test_rejected_raw_frame_outdates_the_calibration(night):
    first = ToyReduced.get(raw=night["science"])
    rejected = night["biases"][1]
    rejected.usable = False
    rejected.commit()
    bias_node = next(n for n in ToyReduced.plan(raw=night["science"]) if n.cls is ToyBias)
    assert bias_node.state == OUTDATED
    assert bias_node.reasons == [f"raw_biases changed: removed ToyExposure {rejected.object_id}"]
    second = ToyReduced.get(raw=night["science"])
    assert second != first
    assert list(second.bias.raw_biases) == [night["biases"][0], night["biases"][2]]


def test_code_version_bump_outdates(night, monkeypatch):
    reduced = ToyReduced.get(raw=night["science"])
    monkeypatch.setattr(ToyReduced, "CODE_VERSION", "2")
    plan = ToyReduced.plan(raw=night["science"])
    assert plan.root.state == OUTDATED
    assert plan.root.reasons == [f"ToyReduced {reduced.object_id} was made by code version '1'; "
                                 "ToyReduced is now at '2'"]
    assert next(n for n in plan if n.cls is ToyBias).state == UP_TO_DATE
    assert ToyReduced.get(raw=night["science"]).code_version == "2"


def test_other_process_parameters_outdate(night):
    selectors = {"chip": night["chip"], "time": NIGHT}
    bias = ToyBias.get(**selectors)
    plan = ToyBias.plan(pars={"clip": 2.5}, **selectors)
    assert plan.root.state == OUTDATED
    assert plan.root.reasons == [f"ToyBias {bias.object_id} was made with other process "
                                 "parameters: clip 3.0 → 2.5"]
    clipped = ToyBias.get(pars={"clip": 2.5}, **selectors)
    assert clipped != bias and clipped.process_parameters.clip == 2.5
    assert ToyBias.get(pars={"clip": 2.5}, **selectors) == clipped
    assert ToyBias.get(**selectors) == bias, "each finds the one made with its parameters"


def test_unknown_parameter_is_refused_with_close_matches(night):
    with pytest.raises(AttributeError, match="did you mean clip"):
        ToyBias.plan(pars={"clp": 2.5}, chip=night["chip"], time=NIGHT)


def test_newest_valid_calibration_wins_and_invalidation_hands_back(night):
    old_reduced = ToyReduced.get(raw=night["science"])
    old_bias = old_reduced.bias
    set_valid(old_bias, 0)
    plan = ToyReduced.plan(raw=night["science"])
    assert next(n for n in plan if n.cls is ToyBias).state == TO_BE_BUILT
    new_reduced = ToyReduced.get(raw=night["science"])
    new_bias = new_reduced.bias
    assert new_bias != old_bias
    set_valid(old_bias, 1)  # re-validated: both valid now, the newer one wins
    assert ToyReduced.get(raw=night["science"]) == new_reduced
    set_valid(new_bias, 0)  # the newer one invalidated: the older one wins again,
    # and the product made with it is up to date again
    plan = ToyReduced.plan(raw=night["science"])
    assert (plan.root.state, plan.root.product) == (UP_TO_DATE, old_reduced)
    assert ToyReduced.get(raw=night["science"]) == old_reduced
    assert len(ToyReduced.all()) == 2, "nothing made"


def test_invalidated_calibration_outdates_what_used_it(night):
    reduced = ToyReduced.get(raw=night["science"])
    used = reduced.bias
    set_valid(used, 0)
    replacement = ToyBias.get(chip=night["chip"], time=NIGHT)
    plan = ToyReduced.plan(raw=night["science"])
    assert plan.root.state == OUTDATED
    assert plan.root.reasons == [
        f"bias: ToyBias {replacement.object_id} now supersedes {used.object_id} "
        f"(ToyBias {used.object_id} was invalidated)"]


def test_invalidated_calibration_without_replacement_is_named(night):
    reduced = ToyReduced.get(raw=night["science"])
    used = reduced.bias
    set_valid(used, 0)
    plan = ToyReduced.plan(raw=night["science"])
    assert plan.root.state == OUTDATED
    bias = next(n for n in plan if n.cls is ToyBias)
    assert plan.root.reasons == [
        f"bias: {bias.label()} is to be made (ToyBias {used.object_id}, which it used, "
        "was invalidated)"]


def test_newer_calibration_supersedes(night):
    reduced = ToyReduced.get(raw=night["science"])
    used = reduced.bias
    set_valid(used, 0)  # a newer bias is made while this one is invalid...
    newer = ToyBias.get(chip=night["chip"], time=NIGHT)
    set_valid(used, 1)  # ...and this one is valid again: both cover the night
    plan = ToyReduced.plan(raw=night["science"])
    assert plan.root.reasons == [
        f"bias: ToyBias {newer.object_id} now supersedes {used.object_id} "
        "(newer, valid, covers 2024-03-17T02:00:00)"]


def test_calibration_window_is_the_night(night):
    bias = ToyBias.get(chip=night["chip"], time=NIGHT)
    assert (bias.timestamp_start, bias.timestamp_end) == (
        datetime.datetime(2024, 3, 16, 12), datetime.datetime(2024, 3, 17, 12))
    next_night = NIGHT + datetime.timedelta(days=1)
    plan = ToyBias.plan(chip=night["chip"], time=next_night)
    assert plan.root.state == MISSING_INPUT, "no biases that night, and the old one ends at noon"


def test_missing_input_says_what_was_looked_for_and_makes_nothing(night):
    other = ToySensor(name="ccd51")
    science = ingest(night["tmp"], "science", other, NIGHT, 7)
    plan = ToyReduced.plan(raw=science)
    assert states(plan) == {"ToyReduced": MISSING_INPUT, "ToyBias": MISSING_INPUT}
    bias_node = next(n for n in plan if n.cls is ToyBias)
    assert bias_node.reasons[0].startswith("no ToyExposure for raw_biases: looked for")
    with pytest.raises(MissingInputError, match="ToyBias\\(chip=ccd51.*no ToyExposure"):
        ToyReduced.get(raw=science)
    assert len(ToyBias.all()) == 0 and len(ToyReduced.all()) == 0


def test_failing_make_keeps_what_finished_and_commits_nothing_for_itself(night):
    ToyReduced.fail = True
    with pytest.raises(MakeError) as caught:
        ToyReduced.get(raw=night["science"])
    message = str(caught.value)
    assert "making ToyReduced(raw=ToyExposure" in message and "NaN in the science frame" in message
    assert "bias=ToyBias" in message
    assert isinstance(caught.value.original, ValueError)
    assert len(ToyReduced.all()) == 0
    assert len(ToyBias.all()) == 1, "the bias that finished is kept"
    stored = targets.data_client().list("ToyReduced")
    assert stored == [], "nor is a file stored for it"
    ToyReduced.fail = False
    plan = ToyReduced.plan(raw=night["science"])
    assert states(plan) == {"ToyReduced": TO_BE_BUILT, "ToyBias": UP_TO_DATE}
    ToyReduced.get(raw=night["science"])
    assert len(ToyBias.all()) == 1, "asking again resumes: the bias is not made twice"


def test_depth_limits_what_is_checked(night):
    ToyReduced.get(raw=night["science"])
    plan = ToyReduced.plan(raw=night["science"], depth=0)
    assert states(plan) == {"ToyReduced": UP_TO_DATE, "ToyBias": NOT_CHECKED}


def test_selectors_are_checked(night):
    with pytest.raises(TypeError, match="asked for by chip, time; unknown: night; missing: time"):
        ToyBias.plan(chip=night["chip"], night=NIGHT)


def test_reproduce_gives_the_same_file(night):
    reduced = ToyReduced.get(raw=night["science"])
    again = reduced.reproduce()
    assert again.identical, str(again)
    assert str(again) == f"ToyReduced {reduced.object_id} reproduced exactly ({reduced.checksum})"
    assert len(ToyReduced.all()) == 1, "nothing committed"
    assert targets.data_client().list("ToyReduced") == [reduced.filename], "nothing stored"


def test_reproduce_reports_a_difference_with_the_code_version(night, monkeypatch):
    reduced = ToyReduced.get(raw=night["science"])
    monkeypatch.setattr(ToyReduced, "CODE_VERSION", "2")
    original_make = ToyReduced.make

    def changed_make(self, workdir):
        path = original_make(self, workdir)
        path.write_text(path.read_text() + " ")
        return path
    monkeypatch.setattr(ToyReduced, "make", changed_make)
    again = reduced.reproduce()
    assert not again.identical
    assert str(again).startswith(f"ToyReduced {reduced.object_id} did not reproduce: recorded "
                                 f"{reduced.checksum}, made again blake3:")
    assert str(again).endswith("it was made by code version '1', this is '2'")


def test_progress_shows_products_done_out_of_to_do(night, capsys):
    ToyReduced.get(raw=night["science"])
    err = capsys.readouterr().err
    assert "[0/2] making ToyBias(chip=ccd50" in err
    assert "[1/2] made ToyBias" in err and "[2/2] made ToyReduced(raw=ToyExposure" in err
    ToyReduced.get(raw=night["science"])
    assert capsys.readouterr().err == "", "nothing to make, nothing shown"


def test_project_parameters_are_in_force_between_defaults_and_the_call(night):
    selectors = {"chip": night["chip"], "time": NIGHT}
    bias = ToyBias.get(**selectors)
    targets.set_project_parameters({"ToyBias": {"clip": 2.0}})
    try:
        plan = ToyBias.plan(**selectors)
        assert plan.root.reasons == [f"ToyBias {bias.object_id} was made with other process "
                                     "parameters: clip 3.0 → 2.0"]
        assert ToyBias.get(**selectors).process_parameters.clip == 2.0
        assert ToyBias.get(pars={"clip": 3.0}, **selectors) == bias
    finally:
        targets.set_project_parameters({})

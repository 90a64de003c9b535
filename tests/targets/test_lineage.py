"""Lineage, dependents and impact: recorded at commit, each one recursive query."""

import datetime

import pytest

import dataserver
import targets
from targets.curation import set_valid
from tests.persistence.sql import statements
from tests.targets.engine_models import ToySensor, ToyStack, ingest

NIGHT = datetime.datetime(2024, 3, 17, 0, 0)


def make_survey(tmp_path, frames_per_night):
    """Two nights of one chip: 3 biases and ``frames_per_night`` science frames each,
    reduced and stacked. Returns the stack."""
    targets.set_data_client(dataserver.Client(tmp_path / "files"))
    chip = ToySensor(name="ccd50")
    chip.commit()
    for night in range(2):
        start = NIGHT + datetime.timedelta(days=night)
        for i in range(3):
            ingest(tmp_path, "bias", chip, start + datetime.timedelta(minutes=i), 100 + i)
        for i in range(frames_per_night):
            ingest(tmp_path, "science", chip, start + datetime.timedelta(hours=1, minutes=i),
                   500 + i)
    return ToyStack.get(chip=chip)


@pytest.fixture
def survey(db, tmp_path):
    yield make_survey(tmp_path, frames_per_night=2)
    targets.set_data_client(None)


def test_lineage_tells_everything_down_to_the_raw_frames(survey):
    lineage = survey.lineage()
    kinds = sorted(type(obj).__name__ for obj in lineage)
    assert kinds == ["ToyBias"] * 2 + ["ToyExposure"] * 10 + ["ToyReduced"] * 4 + ["ToyStack"]
    text = str(lineage)
    first_line, second_line = text.splitlines()[:2]
    assert first_line.startswith(f"ToyStack {survey.object_id} [code version 1; ToyStack-")
    assert second_line.startswith("  frames: ToyReduced")
    assert "bias: ToyBias" in text and "clip=3.0" in text
    assert "raw_biases: ToyExposure" in text
    reduced = survey.frames[0]
    assert set(lineage.graph.successors(reduced)) == {reduced.raw, reduced.bias}
    assert lineage.graph.edges[reduced, reduced.bias]["role"] == "bias"


def test_dependents_and_impact(survey):
    bias = survey.frames[0].bias
    raw_bias = bias.raw_biases[0]
    users = sorted((f for f in survey.frames if f.bias == bias), key=lambda f: f.object_id)
    assert raw_bias.dependents() == [bias, *users, survey]
    assert bias.dependents() == [*users, survey]
    assert survey.dependents() == []
    set_valid(users[0], 0)
    assert bias.impact() == [users[1], survey], "an invalid product cannot become outdated"


def count_statements(db, tmp_path, frames_per_night):
    stack = make_survey(tmp_path, frames_per_night)
    bias = stack.frames[0].bias
    raw_bias = bias.raw_biases[0]
    counts = {}
    stack = ToyStack.load(stack.object_id)  # nothing cached on the objects
    with statements(db) as seen:
        lineage = stack.lineage()
        str(lineage)
    counts["lineage"] = (len(seen), len(lineage))
    with statements(db) as seen:
        found = raw_bias.dependents()
    counts["dependents"] = (len(seen), len(found))
    with statements(db) as seen:
        found = raw_bias.impact()
        [p.is_valid for p in found]
    counts["impact"] = (len(seen), len(found))
    return counts


@pytest.mark.parametrize("query", ["lineage", "dependents", "impact"])
def test_statement_counts_do_not_grow_with_the_graph(db, tmp_path, query):
    small = count_statements(db, tmp_path / "small", frames_per_night=2)[query]
    targets.set_data_client(None)
    large = count_statements(db, tmp_path / "large", frames_per_night=100)[query]
    targets.set_data_client(None)
    assert large[1] > 100, "a few hundred objects"
    assert large[0] == small[0], f"{query}: {small[0]} statements for {small[1]} objects, " \
                                 f"{large[0]} for {large[1]}"


def test_planning_an_up_to_date_request_takes_statements_independent_of_its_size(db, tmp_path):
    counts = {}
    for frames in (2, 100):
        stack = make_survey(tmp_path / str(frames), frames_per_night=frames)
        with statements(db) as seen:
            plan = ToyStack.plan(chip=stack.chip)
        assert {node.state for node in plan} == {"up to date"}
        counts[len(plan.graph)] = len(seen)
        targets.set_data_client(None)
    (small, few), (large, many) = sorted(counts.items())
    assert large > 200 and many == few, counts
    assert many <= 40, counts

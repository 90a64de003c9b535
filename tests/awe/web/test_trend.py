"""The trend page and its API on the test site: the points are what the query language
gives for the same query, as the session's user; conditions narrow them; bad or
hostile input is a 400 that names the culprit, never a 500."""

import datetime
import io
import re

import numpy as np
import pytest

import persistence
import targets
from tests.awe.web.conftest import log_in

ALICE = persistence.Context(user="alice", project="KIDS", privileges=2)


def expected(query, x, y, context=ALICE):
    """``(object_ids, xs, ys)`` of ``query`` by `Query.to_table`, as ``context``'s user,
    on the database the in-process app connected to."""
    db = persistence.current_database()
    with db.acting_as(context):
        table = query.to_table("object_id", x, y)
    return (table["object_id"].tolist(), _values(table[x]), _values(table[y]))


def _values(column):
    """A table column as the API gives it: None where masked, times as ISO text."""
    if hasattr(column, "isot"):
        return [None if np.ma.is_masked(t) else t.datetime.isoformat() for t in column]
    mask = np.ma.getmaskarray(column)
    return [None if m or (isinstance(v, float) and not np.isfinite(v)) else v
            for v, m in zip(np.ma.getdata(column).tolist(), mask)]


def trend(client, cls, x, y, *where):
    response = client.get("/api/trend", params={"cls": cls, "x": x, "y": y,
                                                "where": list(where)})
    assert response.status_code == 200, response.text
    points = response.json()
    return points["object_id"], points["x"], points["y"]


def test_points_are_those_of_the_query(site, app_client):
    log_in(app_client, "alice")
    got = trend(app_client, "CalibratedExposure", "seeing", "zeropoint")
    assert got == expected(targets.CalibratedExposure.all(), "seeing", "zeropoint")
    assert len(got[0]) > 0 and all(v is not None for v in got[1] + got[2])


def test_paths_follow_references(site, app_client):
    log_in(app_client, "alice")
    chip = site.facts["flat_chip"]
    got = trend(app_client, "CalibratedExposure", "flat.stdev", "raw.airmass",
                f"chip.name == {chip}")
    query = targets.CalibratedExposure.chip.name == chip
    assert got == expected(query, "flat.stdev", "raw.airmass")
    assert len(got[0]) > 0 and None not in got[1]


def test_conditions_narrow_the_rows(site, app_client):
    log_in(app_client, "alice")
    Source = targets.Source
    everything = trend(app_client, "Source", "mag", "snr")
    bright = trend(app_client, "Source", "mag", "snr", "mag < 20", "snr >= 10")
    assert bright == expected((Source.mag < 20) & (Source.snr >= 10), "mag", "snr")
    assert 0 < len(bright[0]) < len(everything[0])
    assert all(m < 20 and s >= 10 for m, s in zip(bright[1], bright[2]))
    in_list = trend(app_client, "Source", "mag", "snr",
                    f"sourcelist == {site.facts['sourcelist']}", "filter like ?")
    assert in_list == expected((Source.sourcelist == site.facts["sourcelist"])
                               & Source.filter.like("?"), "mag", "snr")
    assert 0 < len(in_list[0]) < len(everything[0])


def test_conditions_on_times_and_missing_values(site, app_client):
    log_in(app_client, "alice")
    Exposure = targets.CalibratedExposure
    ids, dates, filters = trend(app_client, "CalibratedExposure", "date_obs", "filter")
    middle, last = sorted(dates)[len(dates) // 2], filters[dates.index(max(dates))]
    later = trend(app_client, "CalibratedExposure", "date_obs", "seeing",
                  f"date_obs >= {middle}", f"filter == '{last}'")
    when = datetime.datetime.fromisoformat(middle)
    assert later == expected((Exposure.date_obs >= when) & (Exposure.filter == last),
                             "date_obs", "seeing")
    assert 0 < len(later[0]) < len(ids)
    assert len(later[0]) == sum(d >= middle and f == last for d, f in zip(dates, filters))
    judged = trend(app_client, "CalibratedExposure", "seeing", "reviewed_date",
                   "reviewed_date != null")
    unjudged = trend(app_client, "CalibratedExposure", "seeing", "reviewed_date",
                     "reviewed_date == null")
    assert sorted(judged[0] + unjudged[0]) == sorted(ids)
    assert None not in judged[2] and set(unjudged[2]) <= {None}


def test_only_what_the_user_may_see(site, app_client):
    args = ("CalibratedExposure", "seeing", "zeropoint")
    assert trend(app_client, *args) == ([], [], [])  # anonymous: alice's are at 2
    log_in(app_client, "bob")
    assert trend(app_client, *args) == ([], [], [])  # VIKING, not KIDS
    log_in(app_client, "carol")
    assert len(trend(app_client, *args)[0]) > 0


def test_page_has_the_plot_and_the_table(site, app_client):
    log_in(app_client, "alice")
    params = {"cls": "CalibratedExposure", "x": "seeing", "y": "flat.stdev",
              "where": [f"filter == {site.facts['filter']}", ""]}
    page = app_client.get("/trend", params=params)
    assert page.status_code == 200, page.text
    ids, _, _ = trend(app_client, "CalibratedExposure", "seeing", "flat.stdev",
                      f"filter == {site.facts['filter']}")
    table = page.text[page.text.index('id="trend-table"'):]
    assert re.findall(r'<a href="/objects/(\d+)">', table) == [str(i) for i in ids]
    assert 'id="trend-capped"' not in page.text
    src = re.search(r'<img id="trend-plot" src="([^"]+)"', page.text)[1]
    assert src.startswith("/trend.png?")
    image = app_client.get(src.replace("&amp;", "&"))
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert_png(image.content)
    assert '<option value="flat.stdev">' in page.text  # the datalist of paths


def test_page_without_a_trend_offers_the_classes(app_client):
    page = app_client.get("/trend", params={"cls": "Source"})
    assert page.status_code == 200
    assert '<option value="Source" selected>' in page.text
    assert '<option value="sourcelist.filter">' in page.text
    assert 'id="trend-plot"' not in page.text


def test_plot_is_a_png(site, app_client):
    log_in(app_client, "alice")
    for x, y in [("seeing", "zeropoint"), ("date_obs", "filter"),
                 ("is_valid", "masked_fraction")]:
        response = app_client.get("/trend.png", params={"cls": "CalibratedExposure",
                                                        "x": x, "y": y})
        assert response.status_code == 200, response.text
        assert_png(response.content)
    empty = app_client.get("/trend.png", params={"cls": "Object", "x": "ra", "y": "dec",
                                                 "where": "n_detections > 1000000"})
    assert_png(empty.content)


def assert_png(content):
    import matplotlib.image

    assert content.startswith(b"\x89PNG\r\n\x1a\n")
    pixels = matplotlib.image.imread(io.BytesIO(content), format="png")
    assert pixels.shape[:2] == (600, 800)
    assert pixels.std() > 0  # something is drawn


def test_capped_at_the_limit(site, app_client, monkeypatch):
    import awe.web.trend

    monkeypatch.setattr(awe.web.trend, "MAX_POINTS", 2)
    log_in(app_client, "alice")
    params = {"cls": "Source", "x": "mag", "y": "snr"}
    points = app_client.get("/api/trend", params=params).json()
    assert points["capped"] and len(points["object_id"]) == 2
    assert points["object_id"] == sorted(points["object_id"])
    page = app_client.get("/trend", params=params)
    assert 'id="trend-capped"' in page.text and "only the first 2" in page.text


BAD = [
    ({"cls": "Nothing"}, "cls: 'Nothing' is not a class"),
    ({"cls": "User", "x": "name", "y": "name"}, "cls: 'User'"),
    ({"cls": "__import__('os')"}, "is not a class"),
    ({"x": "seing"}, "did you mean seeing"),
    ({"x": ""}, "x: give an attribute path"),
    ({"y": "flat"}, "'flat' is a MasterFlat; name one of its attributes"),
    ({"y": "flat.raw_flats.exptime"}, "MasterFlat.raw_flats is a list of RawFlatFrame"),
    ({"x": "seeing.value"}, "CalibratedExposure.seeing is a float, not a reference"),
    ({"x": "__class__"}, "'__class__' is not a path of attribute names"),
    ({"x": "flat.__dict__"}, "is not a path of attribute names"),
    ({"x": "seeing()"}, "is not a path of attribute names"),
    ({"where": "filter = r"}, "write '=='"),
    ({"where": "filter ~ r"}, "is not a condition"),
    ({"where": "filter =="}, "give a value after =="),
    ({"where": "seeing like 1*"}, "like matches text, and seeing is a float"),
    ({"where": "seeing < fast"}, "seeing is a float: 'fast' is not a finite number"),
    ({"where": "seeing < nan"}, "'nan' is not a finite number"),
    ({"where": "quality_flags == 1.5"}, "quality_flags is an int"),
    ({"where": "quality_flags > 99999999999999999999"}, "is not a whole number"),
    ({"where": "date_obs > yesterday"}, "is not an ISO 8601 date"),
    ({"where": "date_obs > 0001-01-01T00:00+01:00"}, "is not an ISO 8601 date"),
    ({"where": "flat > 3"}, "compare it with == or != and an object id"),
    ({"where": "flat == mine"}, "flat is an object id"),
    ({"where": "seeing < null"}, "only compared with == or !="),
    ({"where": "filter == \x00r"}, "control characters"),
    ({"where": "object_id == 1; DROP TABLE dbobject"},
     "'1; DROP TABLE dbobject' is not a whole number"),
    ({"where": "filter.name == r"}, "CalibratedExposure.filter is a str, not a reference"),
    ({"where": ["seeing > 0"] * 21}, "at most 20 conditions"),
    ({"where": "seeing > " + "9" * 400}, "at most 300 characters"),
]


@pytest.mark.parametrize("params,message", BAD, ids=[m[:30] for _, m in BAD])
def test_bad_input_is_a_400_naming_it(site, app_client, params, message):
    log_in(app_client, "alice")
    query = {"cls": "CalibratedExposure", "x": "seeing", "y": "zeropoint", **params}
    api = app_client.get("/api/trend", params=query)
    assert api.status_code == 400, api.text
    assert api.json()["error"] == "bad request"
    assert message in api.json()["message"]
    assert app_client.get("/trend.png", params=query).status_code == 400
    page = app_client.get("/trend", params=query)
    assert page.status_code == 400
    assert 'id="error"' in page.text and 'id="trend-form"' in page.text


def test_injection_attempts_are_harmless(site, app_client):
    log_in(app_client, "alice")
    db = persistence.current_database()
    with db.acting_as(ALICE):
        before = targets.CalibratedExposure.all().count()
    for condition in ["filter == r'; DROP TABLE dbobject; --",
                      "filter == \" OR 1=1 --", "filter == ' OR '1'='1",
                      "filter like %'; DELETE FROM dbobject; --"]:
        assert trend(app_client, "CalibratedExposure", "seeing", "zeropoint",
                     condition) == ([], [], [])
    quoted = trend(app_client, "CalibratedExposure", "seeing", "zeropoint",
                   f"filter == \"{site.facts['filter']}\"")
    assert len(quoted[0]) > 0
    with db.acting_as(ALICE):
        assert targets.CalibratedExposure.all().count() == before

"""The calibration timeline (CalTS): a row per product, a column per night, eclipsed
and invalid products marked. Changes are undone at the end of each test."""

import datetime

import pytest

import targets
from tests.awe.web.conftest import api_plan, log_in
from tests.awe.web.test_objects import as_user, parse


def rows(page):
    table = page.by_id("calts")
    return {int(tr.attrs["data-id"]): tr for tr in table.find("tr") if "data-id" in tr.attrs}


def classes(element):
    return set(element.attrs.get("class", "").split())


def flats_of(chip, band=None, user="alice"):
    with as_user(user):
        query = targets.MasterFlat.chip.name == chip
        if band:
            query = query & (targets.MasterFlat.filter == band)
        return {f.object_id for f in query}


def test_a_row_per_product_and_a_column_per_night(site, app_client):
    log_in(app_client, "alice")
    chip, night = site.facts["flat_chip"], site.facts["night"]
    page = parse(app_client.get(f"/calts?type=MasterFlat&chip={chip}"))
    found = rows(page)
    assert set(found) == flats_of(chip) and len(found) >= 2, "a flat per filter"
    nights = page.by_id("calts").find("th", class_="night")
    assert [th.attrs["title"] for th in nights] == [f"night starting {night}"]
    for object_id, row in found.items():
        assert f"/objects/{object_id}" in row.links()
        covered = [td for td in row.find("td") if "cover" in classes(td)]
        assert len(covered) == 1 and covered[0].attrs["data-night"] == night
        assert "selected" in classes(covered[0]), "the only valid flat of its filter"
        assert not classes(row) & {"eclipsed", "invalid"}
    form = page.by_id("calts-form")
    assert form.attrs["action"] == "/calts" and form.attrs["method"] == "get"
    assert {s.attrs["name"] for s in form.find("select")} == {"type", "chip", "filter"}
    band = site.facts["flat_filter"]
    only = rows(parse(app_client.get(f"/calts?type=MasterFlat&chip={chip}&filter={band}")))
    assert set(only) == flats_of(chip, band) == {site.facts["flat"]}


def test_every_calibration_type_has_a_timeline(site, app_client):
    log_in(app_client, "alice")
    chip, band = site.facts["flat_chip"], site.facts["flat_filter"]
    for name in ("MasterBias", "HotPixelMap", "MasterFlat", "ColdPixelMap"):
        cls = getattr(targets, name)
        with as_user("alice"):
            query = cls.chip.name == chip
            every = {c.object_id for c in query}
            if name in ("MasterFlat", "ColdPixelMap"):
                query = query & (cls.filter == band)
            expected = {c.object_id for c in query}
        assert expected, f"the site has a {name} of {chip}"
        page = parse(app_client.get(f"/calts?type={name}&chip={chip}&filter={band}"))
        assert set(rows(page)) == expected
        if expected == every:  # no filter to choose by: every one is shown
            assert "has no filter" in page.find("main")[0].text


def test_an_invalid_product_is_struck_through(site, app_client):
    token = log_in(app_client, "alice")
    flat_id, chip = site.facts["flat"], site.facts["flat_chip"]
    response = app_client.post(f"/api/objects/{flat_id}/validity", json={
        "is_valid": 0, "comment": "CalTS test"}, headers={"X-CSRF-Token": token})
    assert response.status_code == 200, response.text
    try:
        row = rows(parse(app_client.get(f"/calts?type=MasterFlat&chip={chip}")))[flat_id]
        assert "invalid" in classes(row) and "eclipsed" not in classes(row)
        cell = next(td for td in row.find("td") if "cover" in classes(td))
        assert "selected" not in classes(cell)
    finally:
        response = app_client.post(f"/api/objects/{flat_id}/validity", json={
            "is_valid": 1, "comment": "CalTS test over"}, headers={"X-CSRF-Token": token})
        assert response.status_code == 200, response.text


_NEWER_FLAT = """
flat = MasterFlat(object_id={flat})
context.set_valid(flat, 0, comment='CalTS test: make a newer flat')
context.set_privileges(1)
frames = (RawScienceFrame.chip == flat.chip) & (RawScienceFrame.filter == flat.filter)
frame = frames.first()
newer = MasterFlat.get(chip=flat.chip, filter=flat.filter, time=frame.date_obs)
context.set_privileges(2)
context.set_valid(flat, 1, comment='CalTS test: valid again')
print(newer.object_id)
"""


_CLEAN_UP = """
flat = MasterFlat(object_id={flat})
if flat.is_valid != 1:
    context.set_valid(flat, 1, comment='CalTS test over: valid again')
mine = ((MasterFlat.chip == flat.chip) & (MasterFlat.filter == flat.filter)
        & (MasterFlat.privileges == 1) & (MasterFlat.object_id > flat.object_id))
for newer in mine:
    context.delete(newer)
"""


def test_a_newer_valid_flat_eclipses_the_older_one(site, app_client):
    """Alice makes a newer flat of the same night in her MyDB: to her the old one is
    eclipsed; to carol, who cannot see it, it is not. Deleting it ends the test."""
    flat_id, chip, band = (site.facts[k] for k in ("flat", "flat_chip", "flat_filter"))
    url = f"/calts?type=MasterFlat&chip={chip}&filter={band}"
    try:
        newer = int(site.awe("-c", _NEWER_FLAT.format(flat=flat_id), user="alice")
                    .split()[-1])
        assert newer > flat_id
        log_in(app_client, "alice")
        found = rows(parse(app_client.get(url)))
        assert set(found) == {flat_id, newer}
        assert "eclipsed" in classes(found[flat_id])
        assert "eclipsed" not in classes(found[newer])
        old_cell = next(td for td in found[flat_id].find("td") if "cover" in classes(td))
        new_cell = next(td for td in found[newer].find("td") if "cover" in classes(td))
        assert "shadowed" in classes(old_cell)
        assert f"eclipsed by {newer}" in old_cell.attrs["title"]
        assert "selected" in classes(new_cell)
        log_in(app_client, "carol")
        seen = rows(parse(app_client.get(url)))
        assert set(seen) == {flat_id} and "eclipsed" not in classes(seen[flat_id])
    finally:
        site.awe("-c", _CLEAN_UP.format(flat=flat_id), user="alice")
    log_in(app_client, "alice")
    found = rows(parse(app_client.get(url)))
    assert set(found) == {flat_id} and "eclipsed" not in classes(found[flat_id])
    plan = api_plan(app_client, target="CalibratedExposure", chip=chip, filter=band).json()
    assert plan["counts"]["outdated"] == 0, "the old flat is selected again"


def test_someone_not_logged_in_sees_no_calibrations_of_the_project(site, app_client):
    page = parse(app_client.get(f"/calts?type=MasterFlat&chip={site.facts['flat_chip']}"))
    assert not rows(page) and page.by_id("calts-empty")


@pytest.mark.parametrize("query, status", [
    ("type=Coadd&chip=ccd1", 422), ("type=MasterFlat&chip=ccd1%00", 400),
    ("type=MasterFlat&chip=ccd1&first_night=2024-03-12&last_night=2024-03-10", 400),
    ("type=MasterFlat&chip=ccd1&first_night=tomorrow", 400),
    ("type=MasterFlat&chip=ccd1&first_night=2020-01-01&last_night=2024-01-01", 400),
    ("type=MasterFlat&chip=" + "x" * 101, 422),
    ("type=MasterFlat&chip=ccd1&last_night=9999-12-31", 400),
    ("type=MasterFlat&chip=ccd1&first_night=0001-01-01", 400),
])
def test_bad_choices_are_refused(site, app_client, query, status):
    log_in(app_client, "alice")
    response = app_client.get(f"/calts?{query}", headers={"accept": "text/html"})
    assert response.status_code == status, response.text[:500]


def test_injection_in_a_choice_is_just_a_chip_that_does_not_exist(site, app_client):
    log_in(app_client, "alice")
    page = parse(app_client.get("/calts?type=MasterFlat&chip=ccd1%27%20OR%20%271%27=%271"))
    assert not rows(page) and page.by_id("calts-empty")
    chip = site.facts["flat_chip"]
    assert rows(parse(app_client.get(f"/calts?type=MasterFlat&chip={chip}")))


def test_the_span_can_be_chosen(site, app_client):
    log_in(app_client, "alice")
    chip = site.facts["flat_chip"]
    night = datetime.date.fromisoformat(site.facts["night"])
    first, last = night - datetime.timedelta(days=2), night + datetime.timedelta(days=2)
    page = parse(app_client.get(f"/calts?type=MasterBias&chip={chip}&first_night={first}"
                                f"&last_night={last}"))
    nights = [th.attrs["title"] for th in page.by_id("calts").find("th", class_="night")]
    assert nights == [f"night starting {first + datetime.timedelta(days=k)}"
                      for k in range(5)]
    assert rows(page)
    empty = parse(app_client.get(f"/calts?type=MasterBias&chip={chip}&first_night=2030-01-01"
                                 "&last_night=2030-01-02"))
    assert not rows(empty) and empty.by_id("calts-empty")

"""Object pages through the app: attributes, previews, source tables and downloads,
light curves, lineage, and judging validity and validity windows (with the impact
shown first). Changes are undone at the end of each test: the site is shared."""

import contextlib
import datetime
import io
import math
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from PIL import Image

import persistence
import targets
from awe import preview
from awe.config import profile
from awe.environment import acting_as
from targets.lineage import dependents, impact
from targets.source_list import SOURCE_COLUMNS
from tests.awe.web.conftest import USERS, api_plan, log_in


# -- reading pages ----------------------------------------------------------------------

class Element:
    def __init__(self, tag, attrs):
        self.tag, self.attrs, self.children, self.parts = tag, dict(attrs), [], []

    @property
    def text(self):
        return " ".join(" ".join(p if isinstance(p, str) else p.text for p in self.parts)
                        .split())

    def iter(self):
        yield self
        for child in self.children:
            yield from child.iter()

    def find(self, tag=None, **attrs):
        return [e for e in self.iter() if (tag is None or e.tag == tag)
                and all(e.attrs.get(k.rstrip("_")) == v for k, v in attrs.items())]

    def by_id(self, id_):
        found = self.find(id=id_)
        assert len(found) == 1, f"{len(found)} elements with id {id_!r}"
        return found[0]

    def links(self):
        return [a.attrs["href"] for a in self.find("a") if "href" in a.attrs]


class _Parser(HTMLParser):
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
            "source", "track", "wbr"}

    def __init__(self):
        super().__init__()
        self.stack = [Element("document", {})]

    def handle_starttag(self, tag, attrs):
        element = Element(tag, attrs)
        self.stack[-1].children.append(element)
        self.stack[-1].parts.append(element)
        if tag not in self.VOID:
            self.stack.append(element)

    def handle_endtag(self, tag):
        for k in range(len(self.stack) - 1, 0, -1):
            if self.stack[k].tag == tag:
                del self.stack[k:]
                return

    def handle_data(self, data):
        self.stack[-1].parts.append(data)


def parse(response):
    assert response.status_code == 200, response.text[:2000]
    parser = _Parser()
    parser.feed(response.text)
    return parser.stack[0]


def ids_linked(element):
    return [int(href.rsplit("/", 1)[1]) for href in element.links()
            if href.startswith("/objects/")]


@contextlib.contextmanager
def as_user(name):
    """Query the site's database as ``name`` would (the app's own connection)."""
    project, _ = USERS[name]
    with acting_as(persistence.Context(user=name, project=project, privileges=2)):
        yield


# -- pages ------------------------------------------------------------------------------

def test_an_exposure_page_shows_attributes_with_docs_parameters_and_flags(site, app_client):
    log_in(app_client, "alice")
    exposure_id = site.facts["exposure"]
    page = parse(app_client.get(f"/objects/{exposure_id}"))
    assert "CalibratedExposure" in page.find("h1")[0].text
    assert str(exposure_id) in page.find("h1")[0].text
    with as_user("alice"):
        exposure = targets.CalibratedExposure.load(exposure_id)
        seeing, flat_id = exposure.seeing, exposure.reference_id("flat")
        parameters = exposure.process_parameters.as_dict()
    row = page.by_id("attr-seeing")
    assert float(row.find("td")[0].text) == pytest.approx(seeing, rel=1e-9)
    assert "Seeing: median FWHM of stars [arcsec]" in row.text
    assert f"/objects/{flat_id}" in page.by_id("attr-flat").links()
    assert "set by context.set_valid()" in page.by_id("attr-is_valid").text
    shown = {tr.attrs["data-name"]: tr.find("td")[0].text
             for tr in page.by_id("parameter-table").find("tr") if "data-name" in tr.attrs}
    assert sorted(shown) == sorted(parameters)
    flags = {tr.attrs["data-flag"] for tr in page.by_id("declared-flags").find("tr")
             if "data-flag" in tr.attrs}
    assert flags == set(targets.CalibratedExposure.QUALITY_FLAGS)
    api = app_client.get(f"/api/objects/{exposure_id}").json()
    assert api["class"] == "CalibratedExposure" and api["attributes"]["seeing"] == seeing
    assert api["attributes"]["flat"] == flat_id
    assert api["attribute_docs"]["seeing"] == "Seeing: median FWHM of stars [arcsec]"
    assert {p["name"]: p["value"] for p in api["process_parameters"]} == parameters
    assert api["is_valid"] == 1 and api["may_judge"] is True
    assert api["preview"] == f"/objects/{exposure_id}/preview.png"


def test_any_object_has_a_page_raw_frames_and_chips_too(site, app_client):
    log_in(app_client, "alice")
    frame = site.facts["frame"]
    page = parse(app_client.get(f"/objects/{frame}"))
    assert page.find("h1")[0].text.startswith(f"RawScienceFrame {frame}")
    assert page.by_id("preview").attrs["src"] == f"/objects/{frame}/preview.png"
    assert not page.find(id="validity"), "raw data has no validity to set"
    chip_id = app_client.get(f"/api/objects/{frame}").json()["attributes"]["chip"]
    chip_page = parse(app_client.get(f"/objects/{chip_id}"))
    assert chip_page.find("h1")[0].text.startswith(f"Chip {chip_id}")
    assert not chip_page.find(id="preview")
    assert app_client.get(f"/api/objects/{chip_id}").json()["is_valid"] is None


@pytest.mark.parametrize("who", ["bob", None])
def test_products_of_others_are_not_found(site, app_client, who):
    if who:
        log_in(app_client, who)
    for url in (f"/objects/{site.facts['flat']}", f"/objects/{site.facts['exposure']}"
                "/preview.png", f"/objects/{site.facts['sourcelist']}/sources.csv"):
        response = app_client.get(url, headers={"accept": "text/html"})
        assert response.status_code == 404, url
        assert 'id="error"' in response.text
    for url in ("/api/objects/{}", "/api/objects/{}/lineage", "/api/objects/{}/impact"):
        response = app_client.get(url.format(site.facts["flat"]))
        assert response.status_code == 404 and response.json()["error"] == "not found"


@pytest.mark.parametrize("path, status", [
    ("/objects/999999999", 404), ("/objects/0", 422), (f"/objects/{2 ** 63}", 422),
    ("/objects/-1", 422), ("/objects/abc", 422), ("/objects/1%20OR%201=1", 422),
    ("/api/objects/999999999/dependents", 404), ("/objects/999999999/lightcurve.png", 404),
])
def test_bad_ids_are_refused_never_a_server_error(app_client, path, status):
    log_in(app_client, "alice")
    response = app_client.get(path, headers={"accept": "text/html"})
    assert response.status_code == status, response.text[:500]
    if status == 404 and path.startswith("/api/"):
        assert response.json()["error"] == "not found"
    elif status == 404:
        assert 'id="error"' in response.text


def test_a_users_credential_has_no_page(site, app_client):
    log_in(app_client, "alice")
    from awe.web.accounts import Credential

    with as_user("alice"):
        own = (Credential.user == "alice").first()
    assert own is not None
    assert app_client.get(f"/objects/{own.object_id}").status_code == 404
    assert app_client.get(f"/api/objects/{own.object_id}").status_code == 404


# -- previews ---------------------------------------------------------------------------

def png(response):
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"] == "image/png"
    assert response.content.startswith(b"\x89PNG\r\n\x1a\n")
    return Image.open(io.BytesIO(response.content))


def test_the_preview_is_the_image_at_its_size_and_the_mask_variant_differs(site, app_client):
    log_in(app_client, "alice")
    exposure_id = site.facts["exposure"]
    with as_user("alice"):
        exposure = targets.CalibratedExposure.load(exposure_id)
        with fits.open(exposure.retrieve()) as hdus:
            shape, bits = hdus[0].data.shape, hdus["MASK"].data.copy()
        checksum = exposure.checksum
    page = parse(app_client.get(f"/objects/{exposure_id}"))
    image = page.by_id("preview")
    assert image.attrs["src"] == f"/objects/{exposure_id}/preview.png"
    assert "preview" in image.attrs["class"].split()
    plain = png(app_client.get(f"/objects/{exposure_id}/preview.png"))
    assert plain.size == (shape[1], shape[0])
    masked = png(app_client.get(f"/objects/{exposure_id}/preview.png?mask=1"))
    assert masked.size == plain.size
    grey = np.asarray(plain.convert("RGB"))
    coloured = np.asarray(masked.convert("RGB"))
    assert bits.any()
    differs = (grey != coloured).any(axis=2)
    assert differs.any() and not differs[np.flipud(bits == 0)].any()
    assert parse(app_client.get(f"/objects/{exposure_id}?mask=1")).by_id(
        "preview").attrs["src"] == f"/objects/{exposure_id}/preview.png?mask=1"
    cached = sorted(Path(profile()["cache_dir"], "previews").glob(
        f"*{checksum.split(':')[1]}*"))
    assert len(cached) == 2, "both pictures are kept under the file's checksum"


def test_a_raw_frame_preview_is_binned_to_fit(site, app_client):
    log_in(app_client, "alice")
    frame = site.facts["frame"]
    with as_user("alice"):
        raw = targets.RawFrame.load(frame)
        with fits.open(raw.retrieve()) as hdus:
            shape = next(h.data.shape for h in hdus if h.is_image and h.data is not None)
    factor = math.ceil(max(shape) / preview.PREVIEW_MAX)
    picture = png(app_client.get(f"/objects/{frame}/preview.png"))
    assert picture.size == (shape[1] // factor, shape[0] // factor)


@pytest.mark.parametrize("fact, query, status", [
    ("sourcelist", "", 404),    # a table, not an image
    ("flat", "?mask=1", 400),   # an image without a mask
    ("exposure", "?mask=maybe", 422),
])
def test_previews_that_cannot_be_are_refused(site, app_client, fact, query, status):
    log_in(app_client, "alice")
    response = app_client.get(f"/objects/{site.facts[fact]}/preview.png{query}")
    assert response.status_code == status, response.text[:500]


# -- source lists -----------------------------------------------------------------------

def source_numbers(page):
    table = page.by_id("sources")
    return [int(tr.attrs["data-number"]) for tr in table.find("tr")
            if "data-number" in tr.attrs]


def test_the_source_table_pages_and_sorts_as_the_database_does(site, app_client):
    log_in(app_client, "alice")
    list_id = site.facts["sourcelist"]
    with as_user("alice"):
        table = targets.SourceList.load(list_id).table()
    assert len(table) > 100, "the site's source list has more than one page"
    page = parse(app_client.get(f"/objects/{list_id}"))
    assert source_numbers(page) == sorted(table["number"])[:100]
    headers = [th.attrs["data-column"] for th in page.by_id("sources").find("th")]
    assert headers == list(SOURCE_COLUMNS)
    assert f"/objects/{list_id}/sources.fits" in page.links()
    mags = np.asarray(table["mag"])
    assert np.isfinite(mags).all()
    numbers = np.asarray(table["number"])
    by_mag = [int(n) for n in numbers[np.lexsort((numbers, -mags))]]
    page2 = parse(app_client.get(f"/objects/{list_id}?page=2&sort=mag&desc=1"))
    assert source_numbers(page2) == by_mag[100:200]
    rows = [tr for tr in page2.by_id("sources").find("tr") if "data-number" in tr.attrs]
    column = list(SOURCE_COLUMNS).index("mag")
    shown = [float(tr.find("td")[column].text) for tr in rows]
    assert shown == sorted(shown, reverse=True)
    pages = math.ceil(len(table) / 100)
    last = parse(app_client.get(f"/objects/{list_id}?page={pages}&sort=number"))
    assert source_numbers(last) == sorted(table["number"])[(pages - 1) * 100:]


@pytest.mark.parametrize("query, status", [
    ("?sort=nonsense", 400), ("?sort=mag;DROP TABLE source", 400),
    ("?sort=mag%27%20OR%20%271%27=%271", 400), ("?page=0", 422), ("?page=x", 422),
    ("?page=999", 404), ("?desc=sideways", 422),
])
def test_bad_paging_and_sorting_is_refused(site, app_client, query, status):
    log_in(app_client, "alice")
    list_id = site.facts["sourcelist"]
    response = app_client.get(f"/objects/{list_id}{query}", headers={"accept": "text/html"})
    assert response.status_code == status, response.text[:500]
    assert app_client.get(f"/objects/{list_id}?sort=mag").status_code == 200


@pytest.mark.parametrize("extension, read", [
    ("csv", lambda data: Table.read(data.decode(), format="ascii.csv")),
    ("fits", lambda data: Table.read(io.BytesIO(data), format="fits")),
    ("xml", lambda data: Table.read(io.BytesIO(data), format="votable")),
])
def test_sources_download_as_csv_fits_and_votable(site, app_client, extension, read):
    log_in(app_client, "alice")
    list_id = site.facts["sourcelist"]
    with as_user("alice"):
        source_list = targets.SourceList.load(list_id)
        table, n_sources = source_list.table(), source_list.n_sources
    response = app_client.get(f"/objects/{list_id}/sources.{extension}")
    assert response.status_code == 200
    assert "attachment" in response.headers["content-disposition"]
    got = read(response.content)
    assert len(got) == len(table) == n_sources
    assert got.colnames == list(SOURCE_COLUMNS)
    assert list(got["number"]) == list(table["number"])
    assert np.allclose(np.asarray(got["ra"], dtype=float), table["ra"], rtol=0, atol=1e-9)


def test_only_source_lists_have_source_downloads(site, app_client):
    log_in(app_client, "alice")
    assert app_client.get(f"/objects/{site.facts['flat']}/sources.csv").status_code == 404
    response = app_client.get(f"/objects/{site.facts['sourcelist']}/sources.exe")
    assert response.status_code == 422


# -- objects ----------------------------------------------------------------------------

def test_an_objects_light_curve_is_a_plot(site, app_client):
    log_in(app_client, "alice")
    object_id = site.facts["objects"][0]
    page = parse(app_client.get(f"/objects/{object_id}"))
    assert page.by_id("lightcurve").attrs["src"] == f"/objects/{object_id}/lightcurve.png"
    with as_user("alice"):
        curve = targets.Object.load(object_id).lightcurve()
    points = [tr for tr in page.by_id("lightcurve-points").find("tr") if tr.find("td")]
    assert len(points) == len(curve) > 0
    picture = png(app_client.get(f"/objects/{object_id}/lightcurve.png"))
    assert picture.size[0] > 300 and picture.size[1] > 200
    assert np.asarray(picture.convert("L")).std() > 5, "a plot, not a blank"
    upstream = ids_linked(page.by_id("lineage"))
    assert set(upstream) == set(int(s) for s in curve["sourcelist"])
    assert app_client.get(f"/objects/{site.facts['flat']}/lightcurve.png").status_code == 404


# -- lineage ----------------------------------------------------------------------------

def test_lineage_and_dependents_are_linked_trees(site, app_client):
    log_in(app_client, "alice")
    exposure_id, flat_id = site.facts["exposure"], site.facts["flat"]
    with as_user("alice"):
        exposure = targets.CalibratedExposure.load(exposure_id)
        upstream = {o.object_id for o in exposure.lineage()} - {exposure_id}
        direct = {exposure.reference_id(role) for role in ("bias", "flat", "raw")}
        downstream = {p.object_id for p in dependents(targets.MasterFlat.load(flat_id))}
    page = parse(app_client.get(f"/objects/{exposure_id}"))
    assert set(ids_linked(page.by_id("lineage"))) == upstream
    assert direct <= upstream
    flat_page = parse(app_client.get(f"/objects/{flat_id}"))
    assert set(ids_linked(flat_page.by_id("dependents"))) == downstream
    assert exposure_id in downstream
    graph = app_client.get(f"/api/objects/{exposure_id}/lineage").json()
    assert graph["root"] == exposure_id
    assert {n["object_id"] for n in graph["nodes"]} == upstream | {exposure_id}
    assert {"product": exposure_id, "input": flat_id, "role": "flat"} in graph["edges"]
    below = app_client.get(f"/api/objects/{flat_id}/dependents").json()
    assert {n["object_id"] for n in below["nodes"]} == downstream | {flat_id}
    assert {"product": exposure_id, "input": flat_id, "role": "flat"} in below["edges"]


# -- judging ----------------------------------------------------------------------------

def validity_form(page):
    form = page.by_id("validity")
    assert form.attrs["method"] == "post"
    return form


def plan_reasons(client, target, chip, filter_):
    response = api_plan(client, target=target, chip=chip, filter=filter_)
    assert response.status_code == 200, response.text
    return response.json()


def test_invalidating_a_flat_shows_the_impact_then_outdates_what_used_it(site, app_client):
    token = log_in(app_client, "alice")
    flat_id, chip, band = (site.facts[k] for k in ("flat", "flat_chip", "flat_filter"))
    with as_user("alice"):
        expected = [p.object_id for p in impact(targets.MasterFlat.load(flat_id))]
    page = parse(app_client.get(f"/objects/{flat_id}"))
    form = validity_form(page)
    assert form.attrs["action"] == f"/objects/{flat_id}/validity"
    assert form.find("select", name="is_valid") and form.find("textarea", name="comment")
    assert form.find("input", name="csrf_token")[0].attrs["value"] == token
    window_form = page.by_id("validity-window")
    assert window_form.attrs["action"] == f"/objects/{flat_id}/validity-window"
    comment = "light leak in the dome <b>flat</b> lamp"
    confirm = parse(app_client.post(f"/objects/{flat_id}/validity", data={
        "is_valid": "0", "comment": comment, "csrf_token": token}))
    assert ids_linked(confirm.by_id("impact")) == expected and expected
    assert [r["object_id"] for r in app_client.get(
        f"/api/objects/{flat_id}/impact").json()] == expected
    assert app_client.get(f"/api/objects/{flat_id}").json()["is_valid"] == 1, \
        "nothing changes before the confirmation"
    fields = {i.attrs["name"]: i.attrs.get("value", "")
              for i in confirm.by_id("confirm-form").find("input")}
    assert fields["confirm"] == "1" and fields["is_valid"] == "0"
    assert fields["comment"] == comment and confirm.by_id("confirm").tag == "button"
    try:
        done = app_client.post(f"/objects/{flat_id}/validity", data=fields,
                               follow_redirects=False)
        assert done.status_code == 303
        assert done.headers["location"].startswith(f"/objects/{flat_id}")
        after = parse(app_client.get(done.headers["location"]))
        assert after.by_id("is-valid").attrs["data-value"] == "0"
        last = after.by_id("audit-trail").find("tr")[-1].text
        assert "alice" in last and "is_valid 1 0" in last and comment in last
        assert "&lt;b&gt;flat&lt;/b&gt;" in app_client.get(f"/objects/{flat_id}").text, \
            "a comment is shown as text, never as markup"
        for target in ("CalibratedExposure", "SourceList"):
            plan = plan_reasons(app_client, target, chip, band)
            nodes = [n for n in plan["nodes"] if n["class"] == target]
            assert nodes and all(n["state"] == "outdated" for n in nodes)
            exposure = next(n for n in plan["nodes"] if n["class"] == "CalibratedExposure")
            assert any(r.startswith("flat: ") and (
                f"MasterFlat {flat_id}" in r or f"supersedes {flat_id}" in r
                or f"MasterFlat(chip={chip}" in r and f"filter={band}" in r)
                for r in exposure["reasons"]), exposure
    finally:
        restored = app_client.post(f"/api/objects/{flat_id}/validity", json={
            "is_valid": 1, "comment": "test over: valid again"},
            headers={"X-CSRF-Token": token})
        assert restored.status_code == 200, restored.text
    assert restored.json()["is_valid"] == 1
    assert restored.json()["audit_trail"][-1]["comment"] == "test over: valid again"
    plan = plan_reasons(app_client, "CalibratedExposure", chip, band)
    assert plan["counts"]["outdated"] == 0 and plan["counts"]["up to date"] > 0


def test_validating_an_already_valid_product_outdates_nothing(site, app_client):
    token = log_in(app_client, "alice")
    flat_id = site.facts["flat"]
    confirm = parse(app_client.post(f"/objects/{flat_id}/validity", data={
        "is_valid": "2", "comment": "", "csrf_token": token}))
    assert confirm.by_id("impact").find("li") == []
    assert app_client.get(f"/api/objects/{flat_id}").json()["is_valid"] == 1


def test_only_calibrators_with_a_csrf_token_judge(site, app_client):
    flat_id = site.facts["flat"]
    token = log_in(app_client, "bob")
    for comment in ("", "x" * 5000, "nul \x00"):  # whatever bob sends: not found
        assert app_client.post(f"/objects/{flat_id}/validity", data={
            "is_valid": "0", "csrf_token": token, "confirm": "1",
            "comment": comment}).status_code == 404
    assert app_client.post(f"/api/objects/{flat_id}/validity", json={"is_valid": 0},
                           headers={"X-CSRF-Token": token}).status_code == 404
    app_client.post("/logout", data={"csrf_token": token})
    anonymous = app_client.get("/api/context").json()["csrf_token"]
    assert app_client.post(f"/api/objects/{flat_id}/validity", json={"is_valid": 0},
                           headers={"X-CSRF-Token": anonymous}).status_code == 401
    token = log_in(app_client, "alice")
    assert app_client.post(f"/objects/{flat_id}/validity", data={
        "is_valid": "0", "confirm": "1"}).status_code == 403
    assert app_client.post(f"/api/objects/{flat_id}/validity",
                           json={"is_valid": 0}).status_code == 403
    assert app_client.post(f"/api/objects/{flat_id}/validity", json={"is_valid": 0},
                           headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert app_client.get(f"/api/objects/{flat_id}").json()["is_valid"] == 1


@pytest.mark.parametrize("body, status", [
    ({"is_valid": 3}, 422), ({"is_valid": "0"}, 422), ({"is_valid": True}, 422),
    ({"is_valid": 1, "comment": "nul \x00 byte"}, 422), ({"is_valid": 1, "extra": 1}, 422),
    ({"is_valid": 1, "comment": "x" * 2001}, 422), ({}, 422),
])
def test_bad_judgements_are_refused(site, app_client, body, status):
    token = log_in(app_client, "alice")
    response = app_client.post(f"/api/objects/{site.facts['flat']}/validity", json=body,
                               headers={"X-CSRF-Token": token})
    assert response.status_code == status, response.text
    assert app_client.get(f"/api/objects/{site.facts['flat']}").json()["is_valid"] == 1


def test_raw_data_and_chips_have_no_validity_to_set(site, app_client):
    token = log_in(app_client, "alice")
    frame = site.facts["frame"]
    response = app_client.post(f"/api/objects/{frame}/validity", json={"is_valid": 0},
                               headers={"X-CSRF-Token": token})
    assert response.status_code == 400 and "not a product" in response.json()["message"]
    response = app_client.post(f"/api/objects/{site.facts['exposure']}/validity-window",
                               json={"start": "2024-01-01T00:00:00",
                                     "end": "2024-01-02T00:00:00"},
                               headers={"X-CSRF-Token": token})
    assert response.status_code == 400 and "not a calibration" in response.json()["message"]


def test_the_validity_window_is_edited_after_its_impact_is_shown(site, app_client):
    token = log_in(app_client, "alice")
    flat_id = site.facts["flat"]
    before = app_client.get(f"/api/objects/{flat_id}").json()["validity_window"]
    start = datetime.datetime.fromisoformat(before["start"])
    end = datetime.datetime.fromisoformat(before["end"])
    with as_user("alice"):
        flat = targets.MasterFlat.load(flat_id)
        made = [p for p in dependents(flat)]
    observed = [p for p in made if getattr(p, "date_obs", None) is not None]
    assert observed and all(start <= p.date_obs < end for p in observed)
    page = parse(app_client.get(f"/objects/{flat_id}"))
    form = page.by_id("validity-window")
    inputs = {i.attrs["name"]: i.attrs for i in form.find("input")}
    assert inputs["start"]["type"] == inputs["end"]["type"] == "datetime-local"
    assert datetime.datetime.fromisoformat(inputs["start"]["value"]) == start
    # A window after the night outdates every observation made with it, and what
    # was made from them.
    later = {"start": end.isoformat(), "end": (end + datetime.timedelta(days=1)).isoformat(),
             "comment": "", "csrf_token": token}
    confirm = parse(app_client.post(f"/objects/{flat_id}/validity-window", data=later))
    with as_user("alice"):
        outdated = {p.object_id for p in observed}
        for p in observed:
            outdated |= {q.object_id for q in dependents(p)}
    assert set(ids_linked(confirm.by_id("impact"))) == outdated
    assert app_client.get(f"/api/objects/{flat_id}").json()["validity_window"] == before
    # An hour longer at the end outdates nothing; confirm it, then put it back.
    longer = (end + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    confirm = parse(app_client.post(f"/objects/{flat_id}/validity-window", data={
        "start": inputs["start"]["value"], "end": longer, "comment": "an hour more",
        "csrf_token": token}))
    assert confirm.by_id("impact").find("li") == []
    fields = {i.attrs["name"]: i.attrs.get("value", "")
              for i in confirm.by_id("confirm-form").find("input")}
    try:
        done = app_client.post(f"/objects/{flat_id}/validity-window", data=fields,
                               follow_redirects=False)
        assert done.status_code == 303
        after = parse(app_client.get(done.headers["location"]))
        assert after.by_id("window-end").attrs["data-value"] == (
            end + datetime.timedelta(hours=1)).isoformat()
        trail = after.by_id("audit-trail").find("tr")[-1].text
        assert "timestamp_end" in trail and "an hour more" in trail
    finally:
        restored = app_client.post(f"/api/objects/{flat_id}/validity-window", json={
            "start": before["start"], "end": before["end"] + "+00:00",
            "comment": "test over: the night again"}, headers={"X-CSRF-Token": token})
        assert restored.status_code == 200, restored.text
    assert restored.json()["validity_window"] == before


@pytest.mark.parametrize("form, status", [
    ({"start": "yesterday", "end": "2024-03-12T12:00"}, 400),
    ({"start": "2024-03-12T12:00", "end": "2024-03-11T12:00"}, 400),
    ({"start": "2024-03-12T12:00"}, 422),
    ({"start": "2024-03-11T12:00", "end": "2024-03-12T12:00", "comment": "\x00"}, 400),
    ({"start": "2024-03-11T12:00", "end": "2024-03-12T12:00", "comment": "x" * 2001}, 400),
    ({"start": "2024-03-11T12:00" * 10, "end": "2024-03-12T12:00"}, 400),
])
def test_bad_validity_windows_are_refused(site, app_client, form, status):
    token = log_in(app_client, "alice")
    flat_id = site.facts["flat"]
    before = app_client.get(f"/api/objects/{flat_id}").json()["validity_window"]
    response = app_client.post(f"/objects/{flat_id}/validity-window",
                               data={**form, "csrf_token": token, "confirm": "1"},
                               headers={"accept": "text/html"})
    assert response.status_code == status, response.text[:500]
    assert app_client.get(f"/api/objects/{flat_id}").json()["validity_window"] == before
    response = app_client.post(f"/api/objects/{flat_id}/validity-window", json={
        "start": "0001-01-01T00:00:00+05:00", "end": "2024-01-01T00:00:00"},
        headers={"X-CSRF-Token": token})
    assert response.status_code == 400, response.text


def test_the_api_is_described_in_openapi(app_client):
    paths = app_client.get("/openapi.json").json()["paths"]
    for path, method in [("/api/objects/{object_id}", "get"),
                         ("/api/objects/{object_id}/lineage", "get"),
                         ("/api/objects/{object_id}/dependents", "get"),
                         ("/api/objects/{object_id}/impact", "get"),
                         ("/api/objects/{object_id}/validity", "post"),
                         ("/api/objects/{object_id}/validity-window", "post")]:
        assert paths[path][method]["tags"] == ["objects"]
    assert "/objects/{object_id}" not in paths, "pages are not API"

"""Simple Cone Search on the test site, with pyvo as the client against a real ``awe
web`` process: the rows and their order, what anonymous and logged-in users see, the
columns by VERB, errors as SCS error VOTables, the row limit.

Alice's night is at privileges 2, so a world-visible catalogue is added here: a few
objects and sources near (0.001, +60) deg, far from the site's field, by a user
``dave`` of a project ``DEMO`` (at privileges 4, 3, 2 and 1), removed after each test.
"""

import io

import httpx
import numpy as np
import pytest
import pyvo
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import votable

import persistence
import targets
from targets.sky import sky_columns
from tests.awe.web.conftest import log_in, start_web_server

CENTRE = SkyCoord(0.001 * u.deg, 60.0 * u.deg)
"""Where the world-visible rows are: RA 0/360 passes through the cone."""

RADIUS = 120 / 3600
"""The cone searched around `CENTRE` [deg]."""

# (separation [arcsec], position angle [deg], privileges) of the rows made.
OBJECTS = [(1.0, 0.0, 4), (3.0, 90.0, 4), (7.0, 200.0, 4), (15.0, 300.0, 4),
           (40.0, 45.0, 4), (90.0, 135.0, 4), (119.0, 270.0, 4), (200.0, 10.0, 4),
           (5.0, 180.0, 3), (10.0, 20.0, 2), (20.0, 250.0, 1)]
SOURCES = [(2.0, 10.0, 4), (8.0, 100.0, 4), (60.0, 260.0, 4), (150.0, 0.0, 4),
           (4.0, 300.0, 2)]


class World:
    """The rows added: ids, positions and privileges, per table."""

    def __init__(self):
        self.rows = {}

    def add(self, name, ids, positions, privileges):
        self.rows[name] = {"object_id": [int(i) for i in ids], "coord": positions,
                           "privileges": list(privileges)}

    def expected(self, name, levels, centre=CENTRE, radius=RADIUS):
        """``(ids, ra, dec, distance)`` of the rows at ``levels`` within the cone,
        nearest first, by astropy's separations."""
        rows = self.rows[name]
        distance = centre.separation(rows["coord"]).deg
        keep = [k for k, level in enumerate(rows["privileges"])
                if level in levels and distance[k] <= radius]
        keep.sort(key=lambda k: (distance[k], rows["object_id"][k]))
        return ([rows["object_id"][k] for k in keep], rows["coord"].ra.deg[keep],
                rows["coord"].dec.deg[keep], distance[keep])


def _positions(offsets):
    separation = [s for s, _, _ in offsets] * u.arcsec
    angle = [a for _, a, _ in offsets] * u.deg
    return CENTRE.directional_offset_by(angle, separation)


@pytest.fixture
def world(site, app_client):
    """The world-visible catalogue (see the module's docstring), written on the
    database the in-process app connected to, and deleted after the test."""
    db = persistence.current_database()
    assert CENTRE.separation(SkyCoord(site.facts["ra"] * u.deg,
                                      site.facts["dec"] * u.deg)).deg > 20
    made = World()
    dave = persistence.Context(user="dave", project="DEMO", privileges=4)
    objects, sources = _positions(OBJECTS), _positions(SOURCES)
    with db.acting_as(dave), db.transaction() as conn:
        ra, dec = objects.ra.deg, objects.dec.deg
        ids = persistence.insert_many(targets.Object, {
            "ra": ra, "dec": dec, **sky_columns(ra, dec),
            "n_detections": np.arange(1, len(ra) + 1), "v": np.full(len(ra), 0.05),
            "eta": np.linspace(0.5, 3.0, len(ra)), "variability_filter": ["r"] * len(ra),
            "is_new": [k % 2 == 0 for k in range(len(ra))],
            "privileges": [p for _, _, p in OBJECTS]}, connection=conn)
        photometry = persistence.insert_many(targets.ObjectPhotometry, {
            "object": ids[:2], "filter": ["r", "g"], "mag": [18.25, 19.5],
            "mag_err": [0.01, 0.02], "privileges": [4, 4]}, connection=conn)
        made.add("objects", ids, objects, [p for _, _, p in OBJECTS])
        ra, dec = sources.ra.deg, sources.dec.deg
        ids = persistence.insert_many(targets.Source, {
            "ra": ra, "dec": dec, **sky_columns(ra, dec),
            "mag": np.linspace(17.0, 21.0, len(ra)), "snr": np.linspace(200, 10, len(ra)),
            "mjd": np.full(len(ra), 60381.5), "filter": ["i"] * len(ra),
            "privileges": [p for _, _, p in SOURCES]}, connection=conn)
        made.add("sources", ids, sources, [p for _, _, p in SOURCES])
    made.photometry = {int(made.rows["objects"]["object_id"][0]): ("r", 18.25, 0.01),
                       int(made.rows["objects"]["object_id"][1]): ("g", 19.5, 0.02)}
    yield made
    with db.transaction() as conn:
        persistence.delete_many([*photometry, *made.rows["objects"]["object_id"],
                                 *made.rows["sources"]["object_id"]], connection=conn)


@pytest.fixture(scope="module")
def server(site, tmp_path_factory):
    """A real ``awe web`` process on the site (as the ``web_server`` fixture, once for
    the module's tests)."""
    with start_web_server(site, tmp_path_factory.mktemp("scs") / "web.log") as running:
        yield running


def _search(server, name, centre=CENTRE, radius=RADIUS, **keywords):
    service = pyvo.dal.SCSService(f"{server.url}/scs/{name}")
    return service.search(pos=(centre.ra.deg, centre.dec.deg), radius=radius, **keywords)


def assert_rows(table, expected):
    ids, ra, dec, distance = expected
    assert table["object_id"].tolist() == ids
    np.testing.assert_allclose(table["ra"], ra, rtol=0, atol=1e-9)
    np.testing.assert_allclose(table["dec"], dec, rtol=0, atol=1e-9)
    np.testing.assert_allclose(table["distance"], distance, rtol=0, atol=1e-9)


@pytest.mark.parametrize("name", ["objects", "sources"])
def test_pyvo_finds_the_world_visible_rows_nearest_first(site, world, server, name):
    results = _search(server, name)
    expected = world.expected(name, levels={4})
    assert len(expected[0]) >= 3
    assert_rows(results.to_table(), expected)
    first = results[0]  # SCS records find id and position by their UCDs
    assert first.id == expected[0][0]
    assert abs(first.pos.ra.deg - expected[1][0]) < 1e-9
    assert abs(first.pos.dec.deg - expected[2][0]) < 1e-9


def test_anonymous_sees_nothing_of_alices(site, server):
    facts = site.facts
    here = SkyCoord(facts["ra"] * u.deg, facts["dec"] * u.deg)
    for name in ("objects", "sources"):
        assert len(_search(server, name, centre=here, radius=0.02)) == 0


def cone_ids(cls, user, centre, radius):
    """The ids in the cone that ``user`` (of their project) may see, in process."""
    projects = {"alice": "KIDS", "bob": "VIKING", None: "default"}
    db = persistence.current_database()
    with db.acting_as(persistence.Context(user=user, project=projects[user])):
        return set(cls.cone(centre.ra.deg, centre.dec.deg, radius)
                   .columns()["object_id"].tolist())


def _get(client, name, centre=CENTRE, radius=RADIUS, **parameters):
    response = client.get(f"/scs/{name}", params={
        "RA": repr(float(centre.ra.deg)), "DEC": repr(float(centre.dec.deg)),
        "SR": repr(float(radius)),
        **parameters})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    document = votable.parse(io.BytesIO(response.content))
    assert not [i for i in document.infos if i.name == "Error"], response.text[:2000]
    return document


def test_sessions_see_what_their_user_may(site, app_client, world):
    facts = site.facts
    here = SkyCoord(facts["ra"] * u.deg, facts["dec"] * u.deg)
    anonymous = _get(app_client, "objects").get_first_table().to_table()
    assert_rows(anonymous, world.expected("objects", levels={4}))

    log_in(app_client, "alice")
    mine = _get(app_client, "objects", centre=here, radius=0.02).get_first_table()
    mine = mine.to_table()
    assert set(facts["objects"]) <= set(mine["object_id"].tolist())
    assert set(mine["object_id"].tolist()) == cone_ids(targets.Object, "alice", here, 0.02)
    assert np.all(np.diff(mine["distance"]) >= 0)
    sources = _get(app_client, "sources", centre=here, radius=0.02).get_first_table()
    assert set(sources.array["object_id"].tolist()) == cone_ids(targets.Source, "alice",
                                                                here, 0.02)
    assert len(sources.array) > len(mine)
    assert_rows(_get(app_client, "objects").get_first_table().to_table(),
                world.expected("objects", levels={3, 4}))

    log_in(app_client, "bob")
    for name, cls in (("objects", targets.Object), ("sources", targets.Source)):
        theirs = set(_get(app_client, name, centre=here, radius=0.02)
                     .get_first_table().array["object_id"].tolist())
        assert theirs == cone_ids(cls, "bob", here, 0.02)
        assert not theirs & set(facts["objects"]) and not theirs & set(
            sources.array["object_id"].tolist())
    assert_rows(_get(app_client, "objects").get_first_table().to_table(),
                world.expected("objects", levels={3, 4}))


def test_verb_chooses_the_columns(site, app_client, world):
    for name in ("objects", "sources"):
        by_verb = {}
        for verb in (1, 2, 3):
            table = _get(app_client, name, VERB=str(verb)).get_first_table()
            ucds = [f.ucd for f in table.fields]
            assert ucds.count("ID_MAIN") == 1 and table.fields[0].name == "object_id"
            assert table.get_field_by_id("ra").ucd == "POS_EQ_RA_MAIN"
            assert table.get_field_by_id("dec").ucd == "POS_EQ_DEC_MAIN"
            assert str(table.get_field_by_id("ra").unit) == "deg"
            assert str(table.get_field_by_id("distance").unit) == "deg"
            by_verb[verb] = table
        names = {verb: [f.name for f in t.fields] for verb, t in by_verb.items()}
        assert names[1] == ["object_id", "ra", "dec", "distance"]
        assert set(names[1]) < set(names[2]) < set(names[3])
        assert "privileges" in names[3] and "cz" in names[3]
    sources = _get(app_client, "sources").get_first_table()
    assert {"mag", "mag_err", "flux", "snr", "mjd", "filter", "sourcelist"} <= {
        f.name for f in sources.fields}
    assert set(sources.array["filter"].tolist()) == {"i"}
    objects = _get(app_client, "objects").get_first_table().to_table()
    assert {"n_detections", "v", "eta", "is_new", "mag_r", "mag_err_r", "mag_g"} <= set(
        objects.colnames)
    for object_id, (filter_name, mag, error) in world.photometry.items():
        row = objects[objects["object_id"] == object_id][0]
        assert row[f"mag_{filter_name}"] == mag and row[f"mag_err_{filter_name}"] == error
    assert objects["is_new"].dtype == bool


ERRORS = [
    ({"DEC": "60", "SR": "0.1"}, "RA is missing"),
    ({"RA": "ten", "DEC": "60", "SR": "0.1"}, "RA='ten' is not a number"),
    ({"RA": "nan", "DEC": "60", "SR": "0.1"}, "RA='nan' is not a number"),
    ({"RA": "400", "DEC": "60", "SR": "0.1"}, "RA=400 is out of range"),
    ({"RA": "10", "DEC": "95", "SR": "0.1"}, "DEC=95 is out of range"),
    ({"RA": "10", "DEC": "60"}, "SR is missing"),
    ({"RA": "10", "DEC": "60", "SR": "1e999"}, "SR='1e999' is not a number"),
    ({"RA": "10", "DEC": "60", "SR": "-1"}, "SR=-1 is out of range"),
    ({"RA": "10", "DEC": "60", "SR": "10.5"}, "SR=10.5 is out of range"),
    ({"RA": "10", "DEC": "60", "SR": "0.1", "VERB": "4"}, "VERB='4'"),
    ({"RA": ["10", "11"], "DEC": "60", "SR": "0.1"}, "RA is given 2 times"),
]


def test_errors_are_scs_error_votables(site, server):
    for parameters, message in ERRORS:
        response = httpx.get(f"{server.url}/scs/objects", params=parameters)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/xml")
        document = votable.parse(io.BytesIO(response.content))
        errors = [i for i in document.infos if i.name == "Error"]
        assert len(errors) == 1 and message in errors[0].value, response.text
        assert not document.resources
        with pytest.raises(pyvo.dal.DALQueryError) as raised:
            pyvo.dal.scs.SCSResults(document)
        assert message in str(raised.value)


def test_pyvo_raises_for_an_error(site, server):
    with pytest.raises(pyvo.dal.DALQueryError, match="SR=20 is out of range"):
        _search(server, "sources", radius=20)


def test_metadata_query_gives_the_columns(site, server):
    service = pyvo.dal.SCSService(f"{server.url}/scs/sources")
    columns = {c.name: c for c in service.columns}
    assert columns["object_id"].ucd == "ID_MAIN"
    assert {"ra", "dec", "distance", "mag", "filter"} <= set(columns)


def test_capped_at_the_row_limit(site, app_client, world, monkeypatch):
    import awe.web.vo

    monkeypatch.setattr(awe.web.vo, "MAX_ROWS", 3)
    document = _get(app_client, "objects")
    table = document.get_first_table().to_table()
    expected = world.expected("objects", levels={4})
    assert_rows(table, tuple(column[:3] for column in expected))
    assert [(i.name, i.value) for i in document.infos] == [("QUERY_STATUS", "OVERFLOW")]
    (warning,) = document.resources[0].infos
    assert warning.name == "Warning" and f"holds {len(expected[0])} rows" in warning.value


def test_openapi_declares_the_endpoints(app_client):
    paths = app_client.get("/openapi.json").json()["paths"]
    for name in ("objects", "sources"):
        get = paths[f"/scs/{name}"]["get"]
        assert get["tags"] == ["vo"]
        assert "text/xml" in get["responses"]["200"]["content"]
        assert {p["name"] for p in get["parameters"]} == {"RA", "DEC", "SR", "VERB"}
    assert paths["/api/trend"]["get"]["tags"] == ["trend"]
    assert "image/png" in paths["/trend.png"]["get"]["responses"]["200"]["content"]

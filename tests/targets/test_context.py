"""Users, projects and privileges: who sees what, publishing, deleting, validity, the
audit trail and quality flags, on SQLite and PostgreSQL; and on PostgreSQL the same
visibility enforced by the database for each user's own role.

Two projects (KIDS and VIKING) and four users: amy, a member of KIDS; carl, its
calibrator; mona, its manager; vic, a member of VIKING. The administrator ingests the
raw data for every user (privileges 3).
"""

import datetime
import uuid

import pytest
import sqlalchemy as sa

import dataserver
import persistence
import targets
from awe.cli._inspect import show_lines
from awe.environment import add_user
from persistence import Context
from targets import (MISSING_INPUT, OUTDATED, TO_BE_BUILT, UP_TO_DATE, MissingInputError,
                     PermissionDenied)
from persistence.security import add_database_user
from targets.curation import (delete, product_file_patterns, publish, set_valid,
                              set_validity_window)
from targets.lineage import LineageEdge, dependents
from tests.conftest import empty_database
from tests.targets.engine_models import ToyBias, ToyExposure, ToyReduced, ToySensor, ingest

NIGHT = datetime.datetime(2024, 3, 17, 0, 0)


class Installation:
    """The users (their names carry a suffix: PostgreSQL roles are cluster-wide) and a
    way to act as each."""

    def __init__(self, db, tmp_path):
        self.db, self.tmp = db, tmp_path
        suffix = uuid.uuid4().hex[:6]
        self.names = {who: f"{who}_{suffix}" for who in ("amy", "carl", "mona", "vic")}
        self.admin = f"admin_{suffix}"

    def __getattr__(self, who):
        if who in self.__dict__.get("names", {}):
            return self.names[who]
        raise AttributeError(who)

    def act_as(self, who, project=None, privileges=1):
        """Make ``who`` (amy, carl, ... or None for someone not logged in) the
        context's user."""
        user = None if who is None else getattr(self, who)
        default = {"vic": "VIKING"}.get(who, "KIDS")
        self.db.context = Context(user=user, project=project or default, privileges=privileges)


@pytest.fixture
def site(db, tmp_path):
    """The installation: users, projects, a chip with a night of raw frames (visible to
    every user) and sensors at every privileges level named after who sees them."""
    yield from installation(db, tmp_path)


@pytest.fixture
def pg_site(request, tmp_path):
    """The installation on PostgreSQL only."""
    with empty_database(request, "postgresql", tmp_path) as db:
        yield from installation(db, tmp_path)


def installation(db, tmp_path):
    targets.set_data_client(dataserver.Client(tmp_path / "files",
                                              deletable=product_file_patterns()))
    site = Installation(db, tmp_path)
    try:
        for who, project, role in [("amy", "KIDS", "member"), ("carl", "KIDS", "calibrator"),
                                   ("mona", "KIDS", "manager"), ("vic", "VIKING", "member")]:
            add_user(db, getattr(site, who), project, role)
        site.act_as("admin", project="KIDS", privileges=3)
        site.chip = ToySensor(name="ccd50")
        site.chip.commit()
        site.biases = [ingest(tmp_path, "bias", site.chip,
                              NIGHT + datetime.timedelta(minutes=i), 100 + i) for i in range(3)]
        site.science = ingest(tmp_path, "science", site.chip,
                              NIGHT + datetime.timedelta(hours=2), 500)
        sensors = [("amy", "KIDS", 1), ("amy", "KIDS", 2), ("vic", "VIKING", 1),
                   ("vic", "VIKING", 2), ("admin", "KIDS", 3), ("admin", "KIDS", 4)]
        for who, project, privileges in sensors:
            site.act_as(who, project=project, privileges=privileges)
            ToySensor(name=f"{who}-{privileges}").commit()
        yield site
    finally:
        targets.set_data_client(None)
        targets.set_project_parameters({})
        if db.dialect == "postgresql":
            with db.engine.connect() as conn:  # roles outlive the database: drop them
                for name in site.names.values():
                    conn.execute(sa.text(f'DROP ROLE IF EXISTS "{name}"'))
                conn.commit()


#: Which sensors each user sees: their own, their projects' (2), every user's (3), the
#: world's (4); someone not logged in (None) sees the world's only.
VISIBLE = {
    "amy": {"amy-1", "amy-2", "admin-3", "admin-4"},
    "carl": {"amy-2", "admin-3", "admin-4"},
    "mona": {"amy-2", "admin-3", "admin-4"},
    "vic": {"vic-1", "vic-2", "admin-3", "admin-4"},
    None: {"admin-4"},
}


def sensor_names(query=None):
    return {s.name for s in (ToySensor.all() if query is None else query)} - {"ccd50"}


# -- visibility ---------------------------------------------------------------------

@pytest.mark.parametrize("who", list(VISIBLE))
def test_each_user_sees_what_their_privileges_allow(site, who):
    site.act_as(who)
    assert sensor_names() == VISIBLE[who]
    assert sensor_names(ToySensor.name.like("*-2")) == {n for n in VISIBLE[who]
                                                        if n.endswith("-2")}
    assert ToySensor.all().count() == len(VISIBLE[who]) + (who is not None)
    assert {s.name for s in persistence.fetch_together([ToySensor.all()])[0]} - {"ccd50"} \
        == VISIBLE[who]


def test_user_only_and_project_only_narrow_further(site):
    site.act_as("amy")
    assert sensor_names(ToySensor.all().user_only()) == {"amy-1", "amy-2"}
    assert sensor_names(ToySensor.all().project_only()) == {"amy-1", "amy-2", "admin-3",
                                                             "admin-4"}
    site.act_as("vic")
    assert sensor_names(ToySensor.all().project_only()) == {"vic-1", "vic-2"}


def test_an_invisible_object_cannot_be_loaded_by_id(site):
    site.act_as("amy")
    mine = (ToySensor.name == "amy-1").first()
    site.act_as("vic")
    with pytest.raises(persistence.ObjectNotFoundError, match=f"that {site.vic} may see"):
        ToySensor(object_id=mine.object_id)


def test_nobody_logged_in_cannot_commit(site):
    site.act_as(None)
    with pytest.raises(persistence.CommitError, match="nobody is logged in"):
        ToySensor(name="anonymous").commit()


def test_get_never_selects_what_the_user_may_not_see(site):
    site.act_as("amy")
    mine = ToyReduced.get(raw=site.science)
    assert (mine.owner, mine.privileges, mine.bias.owner) == (site.amy, 1, site.amy)
    site.act_as("carl", privileges=2)
    plan = ToyReduced.plan(raw=site.science)
    assert plan.root.state == TO_BE_BUILT, "amy's MyDB products are not candidates"
    theirs = ToyReduced.get(raw=site.science)
    assert theirs != mine and theirs.bias != mine.bias
    assert (theirs.owner, theirs.privileges) == (site.carl, 2)
    site.act_as("amy")  # amy sees both now: the newest up-to-date one is carl's
    assert ToyReduced.plan(raw=site.science).root.product == theirs


def test_lineage_and_dependents_show_only_what_the_user_may_see(site):
    site.act_as("amy")
    reduced = ToyReduced.get(raw=site.science)
    assert set(reduced.lineage()) == {reduced, reduced.bias, site.science, *site.biases}
    assert dependents(site.biases[0]) == [reduced.bias, reduced]
    site.act_as("vic")
    assert dependents(site.biases[0]) == []
    assert LineageEdge.all().count() == 0


# -- publishing ---------------------------------------------------------------------

def test_publishing_takes_the_less_visible_inputs_along(site):
    site.act_as("amy")
    reduced = ToyReduced.get(raw=site.science)
    raised = publish(reduced, 2, comment="for the team")
    assert set(raised) == {reduced, reduced.bias}
    site.act_as("carl")
    assert set(ToyReduced.all()) == {reduced} and set(ToyBias.all()) == {reduced.bias}
    assert len(reduced.lineage()) == 6, "the lineage edges were published with them"
    trail = reduced.audit_trail()
    assert [(r.owner, r.attribute, r.old_value, r.new_value, r.comment) for r in trail] == [
        (site.amy, "privileges", "1", "2", "for the team")]
    site.act_as("vic")
    assert ToyReduced.all().count() == 0


def test_publishing_beyond_the_project_takes_a_manager(site):
    site.act_as("amy")
    reduced = ToyReduced.get(raw=site.science)
    with pytest.raises(PermissionDenied, match="takes a manager of project KIDS"):
        publish(reduced, 3)
    assert reduced.privileges == 1 and ToyReduced.load(reduced.object_id).privileges == 1
    site.act_as("mona")
    with pytest.raises(PermissionDenied, match=f"belongs to {site.amy}"):
        publish(reduced, 3)


def test_publishing_refuses_inputs_of_others_that_are_not_published(site):
    site.act_as("amy")
    bias = ToyBias.get(chip=site.chip, time=NIGHT)
    publish(bias, 2)
    site.act_as("mona", privileges=2)  # mona's reduced frame uses amy's project bias
    reduced = ToyReduced.get(raw=site.science)
    assert reduced.bias == bias
    with pytest.raises(PermissionDenied, match=rf"less visible: ToyBias {bias.object_id} "
                                               rf"of {site.amy} \(privileges 2\)\. Ask"):
        publish(reduced, 3)
    assert ToyReduced.load(reduced.object_id).privileges == 2, "nothing changed"
    site.act_as("vic")
    assert ToyReduced.all().count() == 0


def test_a_manager_publishes_to_every_user_but_not_beyond_the_raw_data(site):
    site.act_as("mona")
    reduced = ToyReduced.get(raw=site.science)
    with pytest.raises(PermissionDenied, match=f"ToyExposure {site.science.object_id} of "
                                               f"{site.admin} \\(privileges 3\\)"):
        publish(reduced, 4)  # the raw data are not the world's
    publish(reduced, 3)
    site.act_as("vic")
    assert set(ToyReduced.all()) == {reduced} and set(ToyBias.all()) == {reduced.bias}
    assert reduced.process_parameters is not None, "published with the product"
    site.act_as(None)
    assert ToyReduced.all().count() == 0


# -- deleting -----------------------------------------------------------------------

def test_delete_refuses_what_others_depend_on_and_cascades_on_request(site):
    site.act_as("amy")
    reduced = ToyReduced.get(raw=site.science)
    bias = reduced.bias
    files = site.tmp / "files"
    assert (files / bias.filename).exists() or any(files.rglob(bias.filename))
    with pytest.raises(PermissionDenied, match=rf"ToyReduced {reduced.object_id}.*cascade=True"):
        delete(bias)
    assert ToyBias.all().count() == 1
    assert [p.object_id for p in delete(bias, cascade=True)] == [bias.object_id,
                                                                 reduced.object_id]
    assert ToyBias.all().count() == 0 and ToyReduced.all().count() == 0
    assert LineageEdge.all().count() == 0
    assert not any(files.rglob(bias.filename)) and not any(files.rglob(reduced.filename))
    assert ToyExposure.all().count() == 4, "raw frames stay"
    assert all(any(files.rglob(raw.filename)) for raw in ToyExposure.all())


def test_delete_refuses_raw_data_published_products_and_others_products(site):
    site.act_as("amy")
    with pytest.raises(PermissionDenied, match="raw data"):
        delete(site.science)
    reduced = ToyReduced.get(raw=site.science)
    publish(reduced, 2)
    with pytest.raises(PermissionDenied, match="published, privileges 2"):
        delete(reduced)
    site.act_as("carl")
    bias = ToyBias.get(chip=site.chip, time=NIGHT, pars={"clip": 2.0})
    site.act_as("amy")
    assert ToyBias.all().count() == 1, "carl's MyDB bias is not amy's to see"
    site.act_as("mona")
    with pytest.raises(PermissionDenied, match=f"belongs to {site.amy}"):
        delete(reduced)
    site.act_as("carl")
    delete(bias)
    assert ToyReduced.all().count() == 1


# -- validity and the audit trail ---------------------------------------------------

def test_only_owners_in_mydb_and_calibrators_set_validity(site):
    site.act_as("amy")
    mine = ToyBias.get(chip=site.chip, time=NIGHT)
    set_valid(mine, 2, comment="looks good")  # amy's own, in MyDB
    publish(mine, 2)
    with pytest.raises(PermissionDenied, match="calibrator or manager of KIDS"):
        set_valid(mine, 0)
    with pytest.raises(persistence.ImmutableObjectError, match="context.set_valid"):
        mine.is_valid = 0
    site.act_as("vic")
    assert ToyBias.all().count() == 0
    site.act_as("carl")
    bias = ToyBias.load(mine.object_id)
    set_valid(bias, 0, comment="light leak")
    start, end = bias.timestamp_start, bias.timestamp_end
    set_validity_window(bias, start, end - datetime.timedelta(hours=6), comment="until 06")
    trail = [(r.owner, r.attribute, r.old_value, r.new_value, r.comment)
             for r in bias.audit_trail()]
    assert trail == [
        (site.amy, "is_valid", "1", "2", "looks good"),
        (site.amy, "privileges", "1", "2", ""),
        (site.carl, "is_valid", "2", "0", "light leak"),
        (site.carl, "timestamp_end", f"{end:%Y-%m-%d %H:%M:%S}",
         f"{end - datetime.timedelta(hours=6):%Y-%m-%d %H:%M:%S}", "until 06")]
    shown = "\n".join(show_lines(bias))
    assert "audit trail:" in shown and "light leak" in shown and site.carl in shown
    with pytest.raises(ValueError, match=r"0 \(invalid\), 1 \(valid\) or 2"):
        set_valid(bias, 5)
    with pytest.raises(ValueError, match="later end"):
        set_validity_window(bias, end, start)


def test_invalidation_outdates_what_used_it_and_get_falls_back_to_the_older(site):
    site.act_as("carl", privileges=2)
    older = ToyBias.get(chip=site.chip, time=NIGHT)
    set_valid(older, 0, comment="to have a newer one made")
    newer = ToyBias.get(chip=site.chip, time=NIGHT)
    set_valid(older, 1, comment="fine after all")
    reduced = ToyReduced.get(raw=site.science)
    assert reduced.bias == newer, "the newest valid calibration is selected"
    assert newer.impact() == [reduced]
    set_valid(newer, 0, comment="bad")
    plan = ToyReduced.plan(raw=site.science)
    assert plan.root.state == OUTDATED
    assert plan.root.reasons == [f"bias: ToyBias {older.object_id} now supersedes "
                                 f"{newer.object_id} (ToyBias {newer.object_id} was invalidated)"]
    remade = ToyReduced.get(raw=site.science)
    assert remade != reduced and remade.bias == older
    assert dependents(older) == [remade]


def test_validity_window_decides_which_calibration_covers(site):
    site.act_as("carl", privileges=2)
    bias = ToyBias.get(chip=site.chip, time=NIGHT)
    reduced = ToyReduced.get(raw=site.science)  # observed at 02:00
    set_validity_window(bias, bias.timestamp_start, NIGHT + datetime.timedelta(hours=1))
    plan = ToyReduced.plan(raw=site.science)
    assert plan.root.state == OUTDATED
    assert next(n for n in plan if n.cls is ToyBias).state == TO_BE_BUILT
    remade = ToyReduced.get(raw=site.science)
    assert remade != reduced and remade.bias != bias
    assert remade.bias.timestamp_start <= site.science.date_obs < remade.bias.timestamp_end


# -- quality flags ------------------------------------------------------------------

def test_flagged_products_are_used_only_after_a_person_judges_them(site):
    site.act_as("carl", privileges=2)
    targets.set_project_parameters({"ToyBias": {"max_level": 50.0}})  # levels are ~101
    with pytest.raises(MissingInputError, match=r"flagged by verify\(\) \(level\)"):
        ToyReduced.get(raw=site.science)
    bias = ToyBias.all()[0]
    assert (bias.quality_flags, bias.quality_flag_names()) == (1, ["level"])
    assert "quality_flags" in "\n".join(show_lines(bias)) and "(level)" in "\n".join(
        show_lines(bias))
    plan = ToyReduced.plan(raw=site.science)
    node = next(n for n in plan if n.cls is ToyBias)
    assert (node.state, node.product) == (UP_TO_DATE, bias), "not made again and again"
    assert plan.root.state == MISSING_INPUT
    assert "awaits a person's judgement" in plan.root.reasons[0]
    set_valid(bias, 1, comment="the level is fine for this chip")  # a person overrules
    reduced = ToyReduced.get(raw=site.science)
    assert reduced.bias == bias
    set_valid(bias, 0, comment="no, it is not")  # invalid: a new one is made, flagged too
    with pytest.raises(MissingInputError, match="awaits a person's judgement"):
        ToyReduced.get(raw=site.science)
    assert ToyBias.all().count() == 2


# -- PostgreSQL: the database enforces it -----------------------------------------------

def role_engine(db, name):
    return sa.create_engine(db.url.set(username=name, password=None))


@pytest.mark.parametrize("who", ["amy", "carl", "mona", "vic"])
def test_raw_sql_as_each_role_sees_what_the_prompt_shows(pg_site, who):
    site, db = pg_site, pg_site.db
    site.act_as("amy")
    ToyReduced.get(raw=site.science)  # amy's MyDB products
    site.act_as("mona", privileges=2)
    ToyReduced.get(raw=site.science)  # the project's
    site.act_as(who)
    expected = {cls.__name__: {o.object_id for o in cls.all()}
                for cls in (ToySensor, ToyExposure, ToyBias, ToyReduced, LineageEdge,
                            persistence.DBObject)}
    engine = role_engine(db, getattr(site, who))
    try:
        with engine.connect() as conn:
            seen = {name: {row[0] for row in conn.execute(sa.text(
                f"SELECT object_id FROM {name.lower()}"))} for name in expected}
            names = {row[0] for row in conn.execute(sa.text("SELECT name FROM toysensor"))}
    finally:
        engine.dispose()
    assert seen == expected
    assert names - {"ccd50"} == VISIBLE[who]


def test_the_python_layer_on_a_users_own_role_sees_the_same(pg_site):
    site, db = pg_site, pg_site.db
    url = db.url.set(username=site.vic, password=None).render_as_string(hide_password=False)
    own = persistence.connect(url, context=Context(user="somebody else"))
    try:
        assert own.context.user == site.vic, "the role decides who the user is"
        assert sensor_names() == VISIBLE["vic"]
        mine = ToySensor(name="vic-new")
        mine.commit()
        assert mine.owner == site.vic
        with own.transaction() as conn:  # not by COPY, which row-level security refuses
            persistence.insert_many(ToySensor, {"name": ["vic-a", "vic-b"]}, connection=conn)
        assert sensor_names() == VISIBLE["vic"] | {"vic-new", "vic-a", "vic-b"}
        reduced = ToyReduced.get(raw=site.science)  # the pipeline, as the role itself
        set_valid(reduced.bias, 2, comment="mine to judge in MyDB")
        publish(reduced, 2)
        delete(ToyBias.get(chip=site.chip, time=NIGHT, pars={"clip": 1.0}))
        assert [(o.owner, o.privileges) for o in ToyBias.all()] == [(site.vic, 2)]
    finally:
        own.close()


def test_a_role_that_is_no_user_sees_the_world_only(pg_site):
    db = pg_site.db
    stranger = f"stranger_{uuid.uuid4().hex[:6]}"
    with db.transaction() as conn:
        add_database_user(conn, stranger)
    engine = role_engine(db, stranger)
    try:
        with engine.connect() as conn:
            names = {row[0] for row in conn.execute(sa.text("SELECT name FROM toysensor"))}
    finally:
        engine.dispose()
        with db.engine.connect() as conn:
            conn.execute(sa.text(f'DROP ROLE "{stranger}"'))
            conn.commit()
    assert names == VISIBLE[None]


def test_the_database_refuses_validity_changes_and_foreign_rows(pg_site):
    site, db = pg_site, pg_site.db
    site.act_as("mona", privileges=2)
    bias = ToyBias.get(chip=site.chip, time=NIGHT)
    member, calibrator = role_engine(db, site.amy), role_engine(db, site.carl)
    update = sa.text("UPDATE processtarget SET is_valid = 0 WHERE object_id = :id")
    try:
        with member.connect() as conn:
            with pytest.raises(sa.exc.ProgrammingError, match="row-level security"):
                conn.execute(update, {"id": bias.object_id})
            conn.rollback()
            with pytest.raises(sa.exc.ProgrammingError, match="row-level security"):
                conn.execute(sa.text(
                    "INSERT INTO dbobject (object_id, class_name, owner, privileges) "
                    "VALUES (-1, 'ToySensor', :other, 3)"), {"other": site.mona})
            conn.rollback()
            with pytest.raises(sa.exc.ProgrammingError, match="row-level security"):
                conn.execute(sa.text("UPDATE dbobject SET privileges = 4 WHERE object_id = :id"),
                             {"id": bias.object_id})
            conn.rollback()
            deleted = conn.execute(sa.text("DELETE FROM dbobject WHERE object_id = :id"),
                                   {"id": site.science.object_id})
            assert deleted.rowcount == 0, "raw data is not the member's to delete"
            conn.rollback()
        with calibrator.connect() as conn:
            assert conn.execute(update, {"id": bias.object_id}).rowcount == 1
            conn.commit()
    finally:
        member.dispose()
        calibrator.dispose()
    assert ToyBias.load(bias.object_id).is_valid == 0

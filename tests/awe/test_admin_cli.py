"""``awe admin add-user`` and the context at the prompt, as real processes."""

import subprocess
import uuid

import sqlalchemy as sa

from tests.awe.conftest import awe_command, awe_environment


def run(home, *args, input=None, **variables):
    return subprocess.run([*awe_command(), *args], env=awe_environment(home, **variables),
                          capture_output=True, text=True, input=input, timeout=300)


def test_add_user_then_work_as_them_in_their_project(tmp_path):
    home = tmp_path / "home"
    added = run(home, "admin", "add-user", "bea", "--project", "KIDS", "--role", "calibrator")
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == "bea is a calibrator of KIDS"
    code = ("print(context.projects()); context.set_privileges(2); print(context); "
            "print(sorted(u.name for u in User.all()))")
    session = run(home, "-c", code, AWE_USER="bea")
    assert session.returncode == 0, session.stderr
    lines = session.stdout.splitlines()
    assert lines[0] == "{'KIDS': 'calibrator'}"
    assert lines[1].startswith("<context: user bea, project KIDS (calibrator), privileges 2")
    assert "bea" in lines[2]
    refused = run(home, "-c", "context.set_project('VIKING')", AWE_USER="bea")
    assert refused.returncode == 1
    assert "bea is not a member of project 'VIKING'" in refused.stderr
    assert "awe admin add-user bea --project VIKING" in refused.stderr


def test_a_short_password_is_refused_before_anything_is_made_fails(tmp_path):
    home = tmp_path / "home"
    refused = run(home, "admin", "add-user", "bea", "--project", "KIDS", "--password",
                  input="short\nshort\n")
    assert refused.returncode == 1
    assert "the password of bea must have at least 8 characters" in refused.stderr
    listed = run(home, "-c", "print(sorted(u.name for u in User.all()))")
    assert "bea" not in listed.stdout


def test_a_web_password_is_set_and_checked(tmp_path):
    home = tmp_path / "home"
    added = run(home, "admin", "add-user", "bea", "--project", "KIDS", "--password",
                AWE_PASSWORD="a long enough one")
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == "bea is a member of KIDS (web password set)"
    code = ("from awe.web.accounts import check_password as c; "
            "print(c(db, 'bea', 'a long enough one'), c(db, 'bea', 'wrong one!'), "
            "c(db, 'nobody', 'a long enough one'))")
    checked = run(home, "-c", code)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.split() == ["True", "False", "False"]


def test_add_user_on_postgresql_makes_a_role_with_a_password(tmp_path, postgresql_url):
    home = tmp_path / "home"
    name = f"pat_{uuid.uuid4().hex[:6]}"
    engine = sa.create_engine(sa.make_url(postgresql_url).set(drivername="postgresql+psycopg2"))
    try:
        added = run(home, "admin", "add-user", name, "--project", "KIDS", "--password",
                    input="s3cret-pat\ns3cret-pat\n", AWE_DATABASE_URL=postgresql_url)
        assert added.returncode == 0, added.stderr
        assert f"{name} connects as: postgresql://{name}@" in added.stdout
        with engine.connect() as conn:
            has_password = conn.execute(sa.text(
                "SELECT rolcanlogin AND rolpassword IS NOT NULL FROM pg_authid "
                "WHERE rolname = :name"), {"name": name}).scalar()
        assert has_password
        url = sa.make_url(postgresql_url).set(username=name).render_as_string(
            hide_password=False)
        session = run(home, "-c", "print(context.user, context.project)",
                      AWE_DATABASE_URL=url, AWE_USER="somebody")
        assert session.returncode == 0, session.stderr
        assert session.stdout.strip() == f"{name} KIDS", "the role decides who the user is"
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP ROLE IF EXISTS "{name}"'))
            conn.commit()
        engine.dispose()

"""Visibility enforced by PostgreSQL itself: row-level security and a role per user.

Each user of a shared installation connects as their own database role (made by
`add_database_user`, a member of the group role `USERS_ROLE`), and policies on every
table admit only the rows `persistence.context` allows, so that ``psql`` shows a user
what the ``awe>`` prompt shows them:

- ``dbobject`` (what every object has): read by the visibility rule; inserted with
  the user as owner; privileges raised (publishing) by the owner only, above 2 only by
  a manager of the object's project; deleted by the owner while it is in their MyDB.
- every other table: a row is read, updated and inserted with its object visible,
  deleted with its object in the user's MyDB; where a table holds attributes only one
  operation may change (validity, its window), an update is refused unless the user
  owns the object in MyDB or is a calibrator or manager of its project.

The table owner (who runs ``awe admin``) and superusers are not subject to the
policies; the Python layer applies the same rules to everyone.
"""

import sqlalchemy as sa

__all__ = ["USERS_ROLE", "add_database_user", "install_policies"]

USERS_ROLE = "awe_user"
"""The group role every user's role belongs to: it holds the table privileges."""

_MEMBER_OF = "(SELECT awe_projects(current_user, '{{{roles}}}'))"
"""The projects in which the current user has one of ``roles``: evaluated once per
statement, not per row."""

_VISIBLE = ("privileges = 4 OR ((SELECT awe_is_user(current_user)) AND (privileges = 3 "
            "OR owner = current_user OR (privileges = 2 AND project IN "
            + _MEMBER_OF.format(roles="member,calibrator,manager") + ")))")


def _judge(row=""):
    """Who may change validity: the owner in MyDB, or the project's calibrators and
    managers; ``row`` is the prefix of the dbobject columns (``'d.'``)."""
    return (f"({row}owner = current_user AND {row}privileges = 1) OR ({row}privileges >= 2 "
            f"AND {row}project IN " + _MEMBER_OF.format(roles="calibrator,manager") + ")")


_PUBLISH = ("owner = current_user AND (privileges <= 2 OR project IN "
            + _MEMBER_OF.format(roles="manager") + ")")


def _functions(schema):
    """Membership look-ups for the policies. SECURITY DEFINER: they read the membership
    and user tables as their owner, since those tables' own policies refer back to
    ``dbobject``, whose policy calls them."""
    search_path = f"SET search_path = {schema}, pg_temp"
    return [
        f"""CREATE OR REPLACE FUNCTION awe_projects(who text, roles text[])
            RETURNS SETOF text LANGUAGE sql STABLE SECURITY DEFINER {search_path} AS $$
            SELECT project_name FROM membership WHERE member = who AND role = ANY(roles) $$""",
        f"""CREATE OR REPLACE FUNCTION awe_is_user(who text) RETURNS boolean
            LANGUAGE sql STABLE SECURITY DEFINER {search_path} AS $$
            SELECT EXISTS (SELECT 1 FROM "user" WHERE name = who) $$""",
    ]


def _of_object(table, condition):
    return f"EXISTS (SELECT 1 FROM dbobject d WHERE d.object_id = {table}.object_id AND ({condition}))"


def _policies(table, judged):
    """The policies of ``table`` (a quoted name); ``judged``: it holds attributes only
    a judge (see `_judge`) may change."""
    if table == "dbobject":
        return {"awe_read": f"FOR SELECT USING ({_VISIBLE})",
                "awe_insert": "FOR INSERT WITH CHECK (owner = current_user)",
                "awe_update": f"FOR UPDATE USING ({_VISIBLE}) WITH CHECK ({_PUBLISH})",
                "awe_delete": "FOR DELETE USING (owner = current_user AND privileges = 1)"}
    visible = _of_object(table, "true")  # dbobject's own policy applies inside
    judge = _of_object(table, _judge("d."))
    mydb = _of_object(table, "d.owner = current_user AND d.privileges = 1")
    return {"awe_read": f"FOR SELECT USING ({visible})",
            "awe_insert": f"FOR INSERT WITH CHECK ({visible})",
            "awe_update": f"FOR UPDATE USING ({visible}) WITH CHECK ({judge if judged else visible})",
            "awe_delete": f"FOR DELETE USING ({mydb})"}


def install_policies(conn, tables, judged):
    """Enable row-level security on ``tables`` (names), with the policies above;
    ``judged`` names those whose update needs a judge. Idempotent; PostgreSQL only."""
    preparer = conn.dialect.identifier_preparer
    schema = _schema(conn)
    # The tables the functions read may be created later in this transaction.
    conn.execute(sa.text("SET LOCAL check_function_bodies = false"))
    for statement in _functions(preparer.quote(schema)):
        conn.execute(sa.text(statement))
    has_users_role = conn.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"),
                                  {"r": USERS_ROLE}).first() is not None
    for name in tables:
        table = preparer.quote(name)
        conn.execute(sa.text(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY"))
        for policy, rule in _policies(table, name in judged).items():
            conn.execute(sa.text(f"DROP POLICY IF EXISTS {policy} ON {table}"))
            conn.execute(sa.text(f"CREATE POLICY {policy} ON {table} {rule}"))
        if has_users_role:
            conn.execute(sa.text(
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {USERS_ROLE}"))


def add_database_user(conn, name, password=None):
    """Make (or update) the PostgreSQL role ``name`` for a user of the installation: it
    may log in (with ``password``, if given) and holds the table privileges of
    `USERS_ROLE`. Run by the database's owner; the `persistence.User` row is separate."""
    preparer = conn.dialect.identifier_preparer
    role = preparer.quote(name)
    if conn.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"),
                    {"r": USERS_ROLE}).first() is None:
        conn.execute(sa.text(f"CREATE ROLE {USERS_ROLE} NOLOGIN"))
    exists = conn.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"),
                          {"r": name}).first() is not None
    conn.execute(sa.text(f"{'ALTER' if exists else 'CREATE'} ROLE {role} LOGIN"))
    if password is not None:
        literal = conn.execute(sa.text("SELECT quote_literal(:p)"), {"p": password}).scalar_one()
        conn.execute(sa.text(f"ALTER ROLE {role} PASSWORD {literal}"))
    conn.execute(sa.text(f"GRANT {USERS_ROLE} TO {role}"))
    conn.execute(sa.text(f"GRANT USAGE ON SCHEMA {preparer.quote(_schema(conn))} TO {USERS_ROLE}"))
    conn.execute(sa.text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "
                         f"{preparer.quote(_schema(conn))} TO {USERS_ROLE}"))
    conn.execute(sa.text(f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA "
                         f"{preparer.quote(_schema(conn))} TO {USERS_ROLE}"))


def _schema(conn):
    return conn.execute(sa.text("SELECT current_schema()")).scalar_one()

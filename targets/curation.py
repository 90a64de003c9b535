"""What people do to products: judge their validity, publish them, delete them.

Every change of validity, validity window or visibility is kept as an `AuditRecord`
(who, when, old value, new value, comment). Who may do what:

- validity and validity windows (`set_valid`, `set_validity_window`): the owner of a
  product in their MyDB (privileges 1); above MyDB, the calibrators and managers of
  its project. A person's judgement overrules the machine's: a product whose
  ``verify()`` set quality flags is selected only once a person set ``is_valid``.
- publishing (`publish`): owners raise their own products to their project (2),
  managers of the project to every user (3) or the world (4), together with every
  input less visible; inputs that belong to someone else must be published by them.
- deleting (`delete`): owners delete their own MyDB products, rows and files; never
  raw frames or anything above MyDB.

These are the operations behind ``context.set_valid(...)`` and friends at the prompt
(`awe.context`); on PostgreSQL the database enforces the same rights itself.
"""

import datetime
import warnings

import sqlalchemy as sa

import dataserver
from persistence import (PRIVILEGES, DBObject, commit_changes, current_database,
                         delete_many, insert_many, persistent, registered_classes)
from persistence.context import check_privileges
from persistence.users import role_at_least

from .dataobject import DataObject, data_client
from .errors import TargetError
from .lineage import LineageEdge, dependents, lineage
from .process import CalibrationTarget, ProcessTarget, describe

__all__ = ["AuditRecord", "PermissionDenied", "audit_trail", "awaiting_review",
           "awaits_review", "delete",
           "publish", "set_valid", "set_validity_window"]


class PermissionDenied(TargetError, PermissionError):
    """Raised if the context's user may not do what was asked; the message says who
    may, and how to become one."""


class AuditRecord(DBObject):
    """One change of a product's validity, validity window or visibility. Its owner
    is who made the change, its creation date when."""

    product = persistent("The object that changed", DBObject, None)
    attribute = persistent("What changed: is_valid, timestamp_start, timestamp_end or "
                           "privileges", str, "")
    old_value = persistent("The value before, as text", str, "")
    new_value = persistent("The value after, as text", str, "")
    comment = persistent("Why, in the words of who changed it", str, "")

    def __str__(self):
        comment = f": {self.comment}" if self.comment else ""
        return (f"{self.creation_date:%Y-%m-%d %H:%M:%S} {self.owner} set {self.attribute} "
                f"{self.old_value} -> {self.new_value}{comment}")


def audit_trail(obj):
    """The `AuditRecord` objects of ``obj``, oldest first."""
    return list(AuditRecord.product == obj)


def awaits_review(product):
    """Whether ``product`` has quality flags that no person has judged yet: it is not
    selected until someone sets its validity."""
    return bool(getattr(product, "quality_flags", 0)) and product.reviewed_date is None


def awaiting_review(product):
    """Why ``product`` is not used yet, and what to do about it."""
    return (f"{describe(product)} was flagged by verify() "
            f"({', '.join(product.quality_flag_names())}) and awaits a person's judgement: "
            f"context.set_valid({type(product).__name__}(object_id={product.object_id}), 1, "
            "comment=...) to use it anyway, or 0 to have a new one made")


# -- validity -----------------------------------------------------------------------

def set_valid(obj, value, *, comment=""):
    """Set ``obj.is_valid`` to 0 (never selected), 1 (valid) or 2 (proposed for
    promotion), as a person's judgement, and record it.

    Products made from an invalidated one become outdated; ``obj.impact()`` lists them
    beforehand.

    Raises
    ------
    PermissionDenied
        Raised unless the user owns ``obj`` in MyDB or calibrates its project.
    """
    if value not in (0, 1, 2):
        raise ValueError(f"is_valid is 0 (invalid), 1 (valid) or 2 (proposed for "
                         f"promotion), not {value!r}")
    _check_product(obj, "set the validity of")
    _check_judge(obj, "validity")
    record = _record(obj, "is_valid", obj.is_valid, value, comment)
    commit_changes({obj: {"is_valid": value, "reviewed_date": _now()}}, together=[record])


def set_validity_window(obj, start, end, *, comment=""):
    """Set the validity window of calibration ``obj`` to ``start`` (inclusive) to
    ``end`` (exclusive), UTC, and record it. Observations that fall out of the
    window are then calibrated by another product (made if need be).

    Raises
    ------
    PermissionDenied
        Raised unless the user owns ``obj`` in MyDB or calibrates its project.
    """
    if not isinstance(obj, CalibrationTarget):
        raise TypeError(f"{describe(obj)} is not a calibration: it has no validity window")
    _check_product(obj, "set the validity window of")
    if not (isinstance(start, datetime.datetime) and isinstance(end, datetime.datetime)
            and start < end):
        raise ValueError(f"a validity window runs from a start to a later end (datetimes, "
                         f"UTC); got {start!r} to {end!r}")
    _check_judge(obj, "validity window")
    new = {"timestamp_start": start, "timestamp_end": end}
    records = [_record(obj, name, getattr(obj, name), value, comment)
               for name, value in new.items() if getattr(obj, name) != value]
    commit_changes({obj: new}, together=records)


def _check_product(obj, doing):
    if not isinstance(obj, ProcessTarget) or obj.object_id is None:
        raise TypeError(f"cannot {doing} {describe(obj)}: only committed products "
                        "(MasterBias, CalibratedExposure, ...) have validity")


def _check_judge(obj, what):
    db = current_database()
    user = db.context.user
    if obj.privileges == 1 and obj.owner == user:
        return
    if obj.privileges >= 2 and role_at_least(db.memberships().get(obj.project), "calibrator"):
        return
    raise PermissionDenied(
        f"{user} may not change the {what} of {describe(obj)} (owner {obj.owner}, "
        f"project {obj.project}, privileges {obj.privileges}): only its owner while it "
        f"is in MyDB, or a calibrator or manager of {obj.project}; the installation's "
        f"administrator makes one with: awe admin add-user {user} --project "
        f"{obj.project} --role calibrator")


def _record(obj, attribute, old, new, comment):
    return AuditRecord(product=obj, attribute=attribute, old_value=_text(old),
                       new_value=_text(new), comment=comment, project=obj.project,
                       privileges=obj.privileges)


def _text(value):
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    return "" if value is None else str(value)


def _now():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


# -- publishing ---------------------------------------------------------------------

def publish(obj, privileges, *, comment=""):
    """Raise the visibility of ``obj`` to ``privileges`` (2 its project, 3 every user,
    4 the world), together with everything it was made from that is less visible.

    Returns
    -------
    raised : `list` of `DBObject`
        The objects whose privileges were raised (``obj`` first).

    Raises
    ------
    PermissionDenied
        Raised, changing nothing, if the user may not publish that far (above 2 takes a
        manager of the project), or if inputs to raise belong to others (listed).
    """
    db = current_database()
    user = db.context.user
    check_privileges(privileges)
    if privileges <= obj.privileges:
        raise ValueError(f"{describe(obj)} is already at privileges {obj.privileges}; "
                         "publishing only raises visibility")
    if obj.owner != user:
        raise PermissionDenied(f"{describe(obj)} belongs to {obj.owner}; only they can "
                               "publish it")
    if privileges > 2 and not role_at_least(db.memberships().get(obj.project), "manager"):
        raise PermissionDenied(
            f"publishing {describe(obj)} to privileges {privileges} "
            f"({PRIVILEGES[privileges]}) takes a manager of project {obj.project}; you can "
            "publish it to your project (2), and a manager can take it further")
    upstream = [o for o in lineage(obj) if o is not obj]
    raised = [obj] + sorted((o for o in upstream if o.privileges < privileges),
                            key=lambda o: o.object_id)
    others = [o for o in raised if o.owner != user]
    if others:
        listed = "; ".join(f"{describe(o)} of {o.owner} (privileges {o.privileges})"
                           for o in others)
        raise PermissionDenied(
            f"cannot publish {describe(obj)} to privileges {privileges}: it was made from "
            f"objects of others that are less visible: {listed}. Ask them to publish "
            "those first.")
    ids = [o.object_id for o in raised]
    with db.transaction() as conn:
        base = DBObject._table
        conn.execute(base.update().where(
            sa.or_(base.c.object_id.in_(ids), base.c.object_id.in_(_parts(raised))),
            base.c.owner == user, base.c.privileges < privileges)
            .values(privileges=privileges))
        insert_many(AuditRecord, {
            "product": ids, "attribute": ["privileges"] * len(ids),
            "old_value": [str(o.privileges) for o in raised],
            "new_value": [str(privileges)] * len(ids), "comment": [comment] * len(ids),
            "project": [o.project for o in raised], "privileges": [privileges] * len(ids)},
            connection=conn)
    for o in raised:
        o._values["privileges"] = privileges
    return raised


def _parts(products):
    """A select of the ids of the rows that belong to ``products`` and share their
    fate: their process parameters, lineage edges, audit records and, for a source
    list, its sources."""
    ids = [p.object_id for p in products]
    references = {str(ref): ref for ref in [LineageEdge.product, AuditRecord.product]}
    for cls in {type(p) for p in products}:
        for ref in getattr(cls, "part_references", list)():
            references[str(ref)] = ref
    table = ProcessTarget._table
    return sa.union_all(
        sa.select(table.c.process_parameters).where(table.c.object_id.in_(ids),
                                                    table.c.process_parameters.isnot(None)),
        *[sa.select(ref.sql_column().table.c.object_id).where(ref.sql_column().in_(ids))
          for ref in references.values()])


# -- deleting -----------------------------------------------------------------------

def delete(obj, *, cascade=False):
    """Delete ``obj``, a product in the user's MyDB: its rows and its file.

    Parameters
    ----------
    cascade : `bool`
        Also delete every product made from it (which must be the user's MyDB products
        too). Without it, a product others depend on is not deleted.

    Returns
    -------
    deleted : `list` of `ProcessTarget`
        The products deleted, ``obj`` first.

    Raises
    ------
    PermissionDenied
        Raised, deleting nothing, for raw data, someone else's product or one above
        MyDB, or if products depend on it (listed) and ``cascade`` is False.
    """
    db = current_database()
    user = db.context.user
    if not isinstance(obj, ProcessTarget):
        raise PermissionDenied(f"{describe(obj)} is not a product; raw data and other "
                               "objects are never deleted this way")
    made_from_it = dependents(obj)
    if made_from_it and not cascade:
        raise PermissionDenied(
            f"cannot delete {describe(obj)}: {len(made_from_it)} products were made from "
            f"it: {', '.join(map(describe, made_from_it))}. Delete them first, or pass "
            "cascade=True to delete them with it.")
    victims = [obj] + made_from_it
    refused = [f"{describe(v)} ({_why_not_deletable(v, user)})" for v in victims
               if _why_not_deletable(v, user)]
    if refused:
        raise PermissionDenied(f"cannot delete {describe(obj)}: " + "; ".join(refused)
                               + ". Only your own products in MyDB (privileges 1) are "
                               "deleted this way.")
    with db.transaction() as conn:
        parts = [row[0] for row in conn.execute(_parts(victims))]
        delete_many([v.object_id for v in victims] + parts, connection=conn)
        # Equal content has one global filename: keep a file others still use.
        files = {v.filename for v in victims if v.filename}
        files -= {row[0] for row in conn.execute(
            sa.select(DataObject._table.c.filename)
            .where(DataObject._table.c.filename.in_(sorted(files))))}
    client = data_client()
    for name in sorted(files):
        try:
            client.delete(name)
        except dataserver.DeleteRefusedError as err:
            warnings.warn(f"the rows of {describe(obj)} are deleted, but the data store "
                          f"keeps {name}: {err}", stacklevel=2)
        except dataserver.MissingFileError:
            pass
    return victims


def product_file_patterns():
    """Shell patterns matching the global filenames of products (never raw data):
    what a directory data store lets `delete` remove."""
    classes = [c for c in registered_classes() if issubclass(c, ProcessTarget)]
    return sorted({f"{c.filename_prefix or c.__name__}-*" for c in classes})


def _why_not_deletable(product, user):
    if not isinstance(product, ProcessTarget):
        return "not a product"
    if product.owner != user:
        return f"belongs to {product.owner}"
    if product.privileges != 1:
        return f"published, privileges {product.privileges}"
    return ""

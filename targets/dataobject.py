"""DataObject: a persistent object that owns a file on the data servers.

The database row holds the file's global filename, size and checksum; the bytes live
on the data store that `set_data_client` names (``awe.connect()`` sets it from the
configuration).
"""

import datetime
import re

import dataserver
from persistence import CommitError, DBObject, ImmutableObjectError, persistent

__all__ = ["DataObject", "data_client", "global_filename", "set_data_client"]

_client = None


def set_data_client(client):
    """Make ``client`` (a `dataserver.Client`) the store every `DataObject` uses."""
    global _client
    _client = client


def data_client():
    """Return the current `dataserver.Client`.

    Raises
    ------
    dataserver.DataServerError
        Raised if none was set: call ``awe.connect()``, or `set_data_client`.
    """
    if _client is None:
        raise dataserver.DataServerError(
            "no data store is configured: call awe.connect() (it reads AWE_DATA_SERVERS), "
            "or targets.set_data_client(dataserver.Client(...))")
    return _client


def global_filename(kind, *, checksum, instrument=None, filter=None, chip=None, time=None,
                    suffix=".fits"):
    """Build the global filename of a product from what it is and what it holds.

    Parts that are None are left out; characters a global filename cannot hold become
    ``_``. The first 8 hex digits of the checksum make names of different content
    differ, and storing the same content again reuse its name.

    Examples
    --------
    >>> import datetime
    >>> global_filename("Cal", instrument="SIM", filter="r", chip="ccd50",
    ...                 time=datetime.datetime(2024, 3, 17, 1, 2, 3),
    ...                 checksum="blake3:1a2b3c4d5e6f")
    'Cal-SIM-r-ccd50-2024-03-17T01:02:03-1a2b3c4d.fits'
    """
    digest = str(checksum).partition(":")[2] or str(checksum)
    if isinstance(time, datetime.datetime):
        time = time.replace(tzinfo=None, microsecond=0).isoformat()
    parts = [kind, instrument, filter, chip, time, digest[:8]]
    name = "-".join(re.sub(r"[\s/\\%]|[^\x20-\x7e]", "_", str(part))
                    for part in parts if part not in (None, ""))
    return dataserver.validate_name(name + suffix)


class DataObject(DBObject):
    """A persistent object with a file, kept on the data servers under a global name.

    Make the file, then `store` it (which sets `filename`, `file_size` and
    `checksum`), then commit. A committed object's file never changes; `retrieve`
    gives a local path to it, checked against the checksum in the database.

    Examples
    --------
    >>> frame = RawFrame(chip=chip, date_obs=when)
    >>> frame.store("/data/incoming/OMEGA.2024-03-17T01:02:03.fits")
    'Raw-SIM-r-ccd50-2024-03-17T01:02:03-1a2b3c4d.fits'
    >>> frame.commit()
    >>> hdus = astropy.io.fits.open(frame.retrieve())
    """

    filename = persistent("Global filename of the file on the data servers", str, "")
    file_size = persistent("Size of the file [bytes]", int, 0)
    checksum = persistent("Checksum of the file, '<algorithm>:<hex digest>'", str, "")

    filename_prefix = None
    """First part of the global filename; the class name if None."""
    filename_suffix = ".fits"
    """Last part of the global filename."""

    def filename_parts(self):
        """The parts of the global filename: `global_filename`'s keyword arguments.

        By default taken from attributes of these names, where the class has them:
        ``instrument``, ``filter``, ``chip`` (a referenced object gives its ``name``)
        and ``date_obs`` or ``timestamp_start`` for the time. Override to choose others.
        """
        parts = {}
        for key in ("instrument", "filter", "chip"):
            value = getattr(self, key, None)
            parts[key] = getattr(value, "name", value)
        parts["time"] = getattr(self, "date_obs", None) or getattr(self, "timestamp_start", None)
        return parts

    def global_name(self, checksum):
        """The global filename for a file with ``checksum``: by default built by
        `global_filename` from `filename_parts`."""
        return global_filename(self.filename_prefix or type(self).__name__,
                               checksum=checksum, suffix=self.filename_suffix,
                               **self.filename_parts())

    def store(self, path):
        """Upload the file at ``path`` and record its global filename, size and checksum.

        Returns
        -------
        filename : `str`
            The global filename.

        Raises
        ------
        persistence.ImmutableObjectError
            Raised if the object is committed: its file can no longer change.
        dataserver.ConflictError
            Raised if the name is taken by a different file.
        """
        if self.is_committed:
            raise ImmutableObjectError(
                f"{self!r} is committed, so its file {self.filename!r} cannot change; "
                "make a new object for a new file")
        checksum = dataserver.file_checksum(path)
        name = self.global_name(checksum)
        info = data_client().store(path, name, checksum=checksum)
        self.filename, self.file_size, self.checksum = name, info.size, info.checksum
        return name

    def retrieve(self, dest=None):
        """Return a local path to the object's file, fetched and checked if need be.

        Parameters
        ----------
        dest : `str` or `os.PathLike`, optional
            Where to put a copy you may change; without it the path is read-only.

        Raises
        ------
        dataserver.MissingFileError
            Raised if the object has no file, or no data server holds it.
        dataserver.ChecksumMismatchError
            Raised if the bytes found differ from the checksum in the database.
        """
        if not self.filename:
            raise dataserver.MissingFileError(f"{self!r} has no file: store(path) one first")
        return data_client().retrieve(self.filename, dest, checksum=self.checksum)

    def lineage(self):
        """Everything this object was made from, down to the raw data, with process
        parameters and code versions: a `targets.Lineage` (one recursive query)."""
        from .lineage import lineage

        return lineage(self)

    def dependents(self):
        """Every product that used this object, directly or indirectly."""
        from .lineage import dependents

        return dependents(self)

    def impact(self):
        """The valid products that would become outdated if this object were
        invalidated."""
        from .lineage import impact

        return impact(self)

    def audit_trail(self):
        """Every change of validity, validity window and visibility, oldest first."""
        from .curation import audit_trail

        return audit_trail(self)

    @classmethod
    def part_references(cls):
        """The references by which rows belong to an object of this class and share its
        fate when it is published or deleted, e.g. a source list's sources (lineage
        edges and audit records belong to every product)."""
        return []

    def validate_commit(self):
        """Refuse to commit an object whose file is not on the data store as recorded."""
        super().validate_commit()
        if not self.filename or not self.checksum:
            raise CommitError(f"{self!r} cannot be committed: its file was never stored; "
                              "call store(path) first")
        try:
            info = data_client().info(self.filename)
        except dataserver.MissingFileError:
            raise CommitError(f"{self!r} cannot be committed: its file {self.filename!r} is "
                              "not on the data store; call store(path) again") from None
        if info.checksum != self.checksum:
            raise CommitError(f"{self!r} cannot be committed: the data store holds "
                              f"{self.filename!r} with checksum {info.checksum}, not the "
                              f"recorded {self.checksum}")

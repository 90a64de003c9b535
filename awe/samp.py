"""Broadcasting to the Virtual Observatory desktop tools (TOPCAT, DS9, Aladin) over SAMP,
with astropy's SAMP client.

At the prompt::

    awe> samp.broadcast(exposure)        # an image: DS9 and Aladin load it
    awe> samp.broadcast(source_list)     # a table: TOPCAT loads it (as a VOTable)

A SAMP hub must be running: TOPCAT and DS9 start one, or run astropy's ``samp_hub``.
AWE registers with the hub on the first broadcast and stays registered until
`disconnect` (or the end of the session).
"""

import atexit
import tempfile
import warnings
from pathlib import Path

__all__ = ["broadcast", "disconnect"]

_client = [None]
_exports = []


def broadcast(item, *, name=None):
    """Send ``item`` to every SAMP client that takes it.

    Parameters
    ----------
    item : `targets.SourceList`, an object with a FITS image file, `astropy.table.Table`, or a path
        A source list or a table is sent as a VOTable (``table.load.votable``); a product
        with a file, or the path of a FITS file, as an image (``image.load.fits``).
    name : `str`, optional
        The name the tools show (by default the object's class and id, or the file name).

    Returns
    -------
    recipients : `list` of `str`
        The names of the clients that were sent it.

    Raises
    ------
    ConnectionError
        Raised if no SAMP hub is running, with what to start.
    """
    mtype, url, label = _message_for(item, name)
    client = _connected()
    params = {"url": url, "name": label}
    if mtype == "table.load.votable":
        params["table-id"] = label
    else:
        params["image-id"] = label
    recipients = client.get_subscribed_clients(mtype)
    client.notify_all({"samp.mtype": mtype, "samp.params": params})
    return [client.get_metadata(r).get("samp.name", r) for r in recipients]


def disconnect():
    """Leave the hub (the temporary table files stay until the session ends)."""
    client, _client[0] = _client[0], None
    if client is not None and client.is_connected:
        client.disconnect()


def _connected():
    from astropy.utils.exceptions import AstropyDeprecationWarning

    with warnings.catch_warnings():
        # astropy 8 deprecates astropy.samp in favour of pyvo.samp, the same client.
        warnings.simplefilter("ignore", AstropyDeprecationWarning)
        from astropy.samp import SAMPHubError, SAMPIntegratedClient

    client = _client[0]
    if client is None or not client.is_connected:
        client = SAMPIntegratedClient(name="AWE", description="AWE survey data system")
        try:
            client.connect()
        except SAMPHubError:
            raise ConnectionError(
                "no SAMP hub is running: start TOPCAT or DS9 (they run one), or "
                "astropy's samp_hub, then broadcast again") from None
        _client[0] = client
    return client


def _message_for(item, name):
    """``(mtype, url, name)`` for ``item``."""
    from astropy.table import Table

    table = None
    if isinstance(item, Table):
        table, label = item, name or "table"
    elif hasattr(item, "table") and hasattr(item, "sources"):  # a SourceList
        table, label = item.table(), name or f"{type(item).__name__} {item.object_id}"
    if table is not None:
        path = _export_directory() / f"{label.replace(' ', '-')}.vot"
        table.write(path, format="votable", overwrite=True)
        return "table.load.votable", path.as_uri(), label
    if hasattr(item, "retrieve") and getattr(item, "filename", None):
        path = Path(item.retrieve()).absolute()
        return "image.load.fits", path.as_uri(), name or f"{type(item).__name__} {item.object_id}"
    if isinstance(item, (str, Path)) and Path(item).is_file():
        path = Path(item).absolute()
        return "image.load.fits", path.as_uri(), name or path.name
    raise TypeError(f"cannot broadcast {item!r}: give a source list, a table, a product with "
                    "a FITS file, or the path of a FITS file")


def _export_directory():
    if not _exports:
        directory = tempfile.TemporaryDirectory(prefix="awe-samp-")
        _exports.append(directory)
        atexit.register(directory.cleanup)
    return Path(_exports[0].name)


atexit.register(disconnect)

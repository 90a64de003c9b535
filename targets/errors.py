"""Errors of target processing."""

__all__ = ["AstrometryError", "InstrumentError", "MakeError", "MissingInputError",
           "PhotometryError", "TargetError"]


class TargetError(Exception):
    """Base class of target-processing errors."""


class MissingInputError(TargetError, LookupError):
    """Raised if a target cannot be made because an input is missing; the message
    says what was looked for."""


class MakeError(TargetError):
    """Raised if a target's ``make()`` failed.

    Attributes
    ----------
    target : `str`
        The target and its selectors.
    original : `BaseException`
        The exception ``make()`` raised.
    """

    def __init__(self, message, *, target=None, original=None):
        super().__init__(message)
        self.target, self.original = target, original


class InstrumentError(TargetError, ValueError):
    """Raised if an instrument file is invalid, or a raw file cannot be read by its
    instrument's rules (not FITS, truncated, a required keyword missing or unreadable).

    The message names the file, the extension and the keyword at fault, and what to do.

    Attributes
    ----------
    filename : `str` or `None`
        The raw file or instrument file at fault.
    extension : `int`, `str` or `None`
        The FITS extension at fault (index or EXTNAME).
    keyword : `str` or `None`
        The header keyword, or the instrument-file key, at fault.
    """

    def __init__(self, message, *, filename=None, extension=None, keyword=None):
        super().__init__(message)
        self.filename, self.extension, self.keyword = filename, extension, keyword


class AstrometryError(TargetError, ValueError):
    """Raised if an exposure cannot be calibrated astrometrically; the message says why
    (too few sources or matches, no significant pointing solution) and what to try."""


class PhotometryError(TargetError, ValueError):
    """Raised if an exposure cannot be calibrated photometrically; the message says why
    and what to try."""

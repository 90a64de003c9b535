"""Errors of target processing."""

__all__ = ["MakeError", "MissingInputError", "TargetError"]


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

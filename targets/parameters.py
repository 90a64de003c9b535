"""Process parameters: the knobs of a target's algorithm, recorded on every product."""

from persistence import DBObject

__all__ = ["ProcessParameters"]

_BASE_ATTRIBUTES = frozenset(DBObject.get_persistent_properties())


class ProcessParameters(DBObject):
    """Base class of a target's process parameters.

    A subclass declares each parameter as a persistent attribute whose default is the
    documented default; a target names its subclass in ``Parameters``.

    Examples
    --------
    >>> class FlatParameters(ProcessParameters):
    ...     sigma_clip = persistent("Clipping threshold [sigma]", float, 3.0)
    >>> FlatParameters(sigma_clip=2.5).as_dict()
    {'sigma_clip': 2.5}
    """

    @classmethod
    def names(cls):
        """The names of the parameters, sorted."""
        found = cls.__dict__.get("_names")
        if found is None:  # asked for every product judged: worked out once per class
            found = cls._names = sorted(set(cls.get_persistent_properties()) - _BASE_ATTRIBUTES)
        return found

    def as_dict(self):
        """The parameters and their values."""
        return {name: getattr(self, name) for name in self.names()}

    @classmethod
    def in_force(cls, overrides=None):
        """New parameters: the defaults, with ``overrides`` (a dict) applied.

        Raises
        ------
        persistence.UnknownAttributeError
            Raised if an override names no parameter; the message lists close matches.
        """
        return cls(**(overrides or {}))

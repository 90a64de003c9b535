"""Named quality flags: the bits `verify` sets in a product's ``quality_flags``.

A product class declares its flags once, and everything else (``verify``, help(), the
names a person reads) comes from that declaration:

>>> class MasterBias(ChipCalibration):                                  # doctest: +SKIP
...     QUALITY_FLAGS = flags(
...         QualityFlag(1, "level", "|mean level| above max_level"),
...         QualityFlag(2, "read_noise", "read noise above max_read_noise"))
...     def verify(self, path):
...         pars = self.process_parameters
...         self.quality_flags = self.flag_bits(
...             level=abs(self.level) > pars.max_level,
...             read_noise=self.read_noise > pars.max_read_noise)
>>> MasterBias.flag_names(3)                                            # doctest: +SKIP
['level', 'read_noise']
"""

import dataclasses
import types

__all__ = ["NO_FLAGS", "QualityFlag", "bit_names", "flags"]

NO_FLAGS = types.MappingProxyType({})
"""The flags of a class that sets none."""


@dataclasses.dataclass(frozen=True)
class QualityFlag:
    """One quality flag of a product class.

    Parameters
    ----------
    bit : `int`
        Its value in ``quality_flags``: a power of two (1, 2, 4, ...).
    name : `str`
        A short identifier, as `flag_names` reports it.
    doc : `str`
        What it means, naming the process parameter whose threshold was passed.
    """

    bit: int
    name: str
    doc: str

    def __post_init__(self):
        if not isinstance(self.bit, int) or self.bit <= 0 or self.bit & (self.bit - 1):
            raise ValueError(f"quality flag {self.name!r} has bit {self.bit!r}: give a "
                             "power of two (1, 2, 4, ...), its value in quality_flags")
        if not self.name.isidentifier():
            raise ValueError(f"quality flag name {self.name!r} is not an identifier: use "
                             "letters, digits and underscores, as in 'dead_columns'")


def flags(*declared):
    """The ``QUALITY_FLAGS`` of a class: a read-only mapping name -> `QualityFlag`, in
    the order given.

    Raises
    ------
    ValueError
        Raised if two flags share a name or a bit.
    """
    found = {}
    for flag in declared:
        for other in found.values():
            if flag.name == other.name or flag.bit == other.bit:
                raise ValueError(f"quality flags {other.name!r} (bit {other.bit}) and "
                                 f"{flag.name!r} (bit {flag.bit}) clash: give each flag "
                                 "its own name and bit")
        found[flag.name] = flag
    return types.MappingProxyType(found)


def bit_names(declared, bits):
    """The names of the flags of ``declared`` (a ``QUALITY_FLAGS``) set in ``bits``, in
    declaration order, then any bit it does not declare as ``'bit 8'``."""
    bits = int(bits or 0)
    names = [flag.name for flag in declared.values() if bits & flag.bit]
    unknown = bits & ~sum(flag.bit for flag in declared.values())
    return names + [f"bit {1 << k}" for k in range(unknown.bit_length()) if unknown >> k & 1]

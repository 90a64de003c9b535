"""The context: who is working, in which project, and who may see what they make.

Every new object takes its owner, project and privileges from the context of the
database it is committed to. Enforcing what a context may see comes with quality
control; the columns and this object exist from the start.
"""

import dataclasses
import getpass

__all__ = ["PRIVILEGES", "Context"]

#: The privileges levels: who may see an object.
PRIVILEGES = {
    1: "MyDB (its owner only)",
    2: "project (the project's members)",
    3: "every user of this installation",
    4: "world (without logging in)",
}


@dataclasses.dataclass
class Context:
    """The current user, project and privileges level.

    Examples
    --------
    >>> Context(user='alice', project='KIDS', privileges=2)
    Context(user='alice', project='KIDS', privileges=2)
    """

    user: str = dataclasses.field(default_factory=getpass.getuser)
    """The user name recorded as the owner of new objects."""
    project: str = "default"
    """The project new objects belong to."""
    privileges: int = 1
    """Who may see new objects, see `PRIVILEGES`."""

    def __post_init__(self):
        if self.privileges not in PRIVILEGES:
            levels = "; ".join(f"{k} = {v}" for k, v in PRIVILEGES.items())
            raise ValueError(f"privileges must be one of {levels}; got {self.privileges!r}")

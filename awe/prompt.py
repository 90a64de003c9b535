"""The ``awe>`` prompt: an interactive Python session (IPython when installed, the
standard console otherwise) with everything an astronomer reaches for already loaded,
and the same namespace for ``awe -c CODE`` and ``awe script.py``.

Loaded: every persistent class of `targets` (``MasterFlat``, ``SourceList``, ``Object``,
...) and ``User``, ``Project``, ``Membership``; ``context`` (who is working, in which
project; judging, publishing and deleting products), ``dpu`` (where products are
made), ``db``, `Pars` (process parameters), ``lineage``, ``dependents`` and
``plan``, ``samp`` (broadcasting to TOPCAT and DS9), and plotting: ``plt``, ``np`` and
the pyplot functions of a trend plot (``plot``, ``scatter``, ``hist``, ``errorbar``,
``xlabel``, ``ylabel``, ``title``, ``legend``, ``figure``, ``savefig``, ``show``). Without
a display, plots go to PNG files: ``show()`` writes each open figure to
``awe-figure-N.png`` in the working directory and says so.
"""

import code
import os
import runpy
import sys
from pathlib import Path

__all__ = ["banner", "interact", "namespace", "run_code", "run_script"]

PROMPT = "awe> "
CONTINUATION = "...> "
PYPLOT_NAMES = ("plot", "scatter", "hist", "errorbar", "xlabel", "ylabel", "title",
                "legend", "figure", "savefig", "subplots", "imshow", "colorbar", "axhline",
                "grid", "xlim", "ylim", "semilogy", "gca", "close")


def use_headless_backend_without_display():
    """Choose matplotlib's Agg backend where there is no screen to draw on, so plotting
    never fails for want of one (unless the user chose a backend)."""
    if os.environ.get("MPLBACKEND") or sys.platform in ("darwin", "win32"):
        return
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ["MPLBACKEND"] = "Agg"


def namespace(db, dpu, settings):
    """The names preloaded at the prompt and in scripts run by ``awe``."""
    use_headless_backend_without_display()
    import astropy.units as u
    import matplotlib.pyplot as plt
    import numpy as np
    from astropy.table import Table

    import persistence
    import targets
    from targets.lineage import dependents, lineage

    from . import samp
    from .pars import Pars

    from .context_handle import context

    names = {cls.__name__: cls for cls in persistence.registered_classes()
             if cls.__module__.split(".")[0] in ("targets", "persistence")
             and cls is not persistence.DBObject}
    names.update({name: getattr(targets, name) for name in ("associate", "ingest")})
    names.update(db=db, context=context, dpu=dpu, settings=settings, Pars=Pars,
                 lineage=lineage, dependents=dependents, plan=plan, samp=samp,
                 np=np, plt=plt, u=u, Table=Table)
    names.update({name: getattr(plt, name) for name in PYPLOT_NAMES})
    names["show"] = show
    return names


def plan(target, /, **selectors):
    """What ``target.get(**selectors)`` would make, and why: the `targets.Plan` (its
    ``str()`` is the tree). ``target`` is a class or its name.

    >>> plan(MasterBias, chip=chip, time=t)        # doctest: +SKIP
    """
    import persistence

    cls = persistence.registered_class(target) if isinstance(target, str) else target
    return cls.plan(**selectors)


_figures_written = [0]


def show():
    """Show the open figures: in a window where there is a screen, otherwise as PNG
    files ``awe-figure-N.png`` in the working directory (their paths are printed)."""
    import matplotlib
    import matplotlib.pyplot as plt

    if matplotlib.get_backend().lower() != "agg":
        plt.show()
        return
    for number in plt.get_fignums():
        _figures_written[0] += 1
        path = Path.cwd() / f"awe-figure-{_figures_written[0]}.png"
        plt.figure(number).savefig(path, dpi=100)
        print(f"figure written to {path}")
    plt.close("all")


def banner(settings, db, dpu):
    """The lines greeting the user: the version and the profile in force."""
    from persistence import PRIVILEGES

    from . import __version__

    context = db.context
    role = db.memberships().get(context.project) or "not a member"
    where = ", ".join(settings.data_servers)
    return "\n".join([
        f"AWE {__version__}, Python {sys.version.split()[0]}",
        f"  user {context.user}, project {context.project} ({role}), privileges "
        f"{context.privileges}, {PRIVILEGES[context.privileges]}",
        f"  database     {db.display_url}",
        f"  data server  {where}",
        f"  dpu          {describe_dpu(dpu)}",
        "Loaded: the product classes (MasterBias ... SourceList, Object), context, dpu, "
        "Pars, lineage, plan, samp, np, plt.",
        "help(MasterFlat) describes a class; awe config shows where each setting comes from.",
    ])


def describe_dpu(dpu):
    import targets

    if isinstance(dpu, targets.SerialDPU):
        return "serial (in this process)"
    return f"Dask scheduler {dpu.address}" if dpu.address else "Dask local cluster"


def interact(names, greeting, *, ipython=None):
    """Run the prompt until the user leaves it (``exit()`` or Ctrl-D).

    ``ipython`` None uses IPython when it is installed; False forces the standard
    console (``AWE_PROMPT=python`` does too)."""
    if ipython is None:
        ipython = os.environ.get("AWE_PROMPT", "").lower() != "python"
    if ipython:
        try:
            return _interact_ipython(names, greeting)
        except ImportError:
            pass
    return _interact_console(names, greeting)


def _interact_ipython(names, greeting):
    from IPython.terminal.embed import InteractiveShellEmbed
    from IPython.terminal.prompts import Prompts, Token
    from traitlets.config import Config

    class AwePrompts(Prompts):
        def in_prompt_tokens(self):
            return [(Token.Prompt, PROMPT)]

        def continuation_prompt_tokens(self, width=None, *, lineno=None, wrap_count=None):
            return [(Token.Prompt, CONTINUATION)]

        def out_prompt_tokens(self):
            return []

    config = Config()
    config.TerminalInteractiveShell.prompts_class = AwePrompts
    config.TerminalInteractiveShell.separate_in = ""
    config.TerminalInteractiveShell.confirm_exit = False
    config.HistoryManager.hist_file = ":memory:"
    shell = InteractiveShellEmbed(config=config, user_ns=names, banner1=greeting + "\n",
                                  banner2="", exit_msg="")
    shell()


def _interact_console(names, greeting):
    try:
        import readline
        import rlcompleter

        readline.set_completer(rlcompleter.Completer(names).complete)
        readline.parse_and_bind("tab: complete")
    except ImportError:  # no readline (Windows): no completion, the prompt still works
        pass
    sys.ps1, sys.ps2 = PROMPT, CONTINUATION
    code.interact(banner=greeting, local=names, exitmsg="")


def run_code(source, names):
    """Run ``source`` (``awe -c``) in ``names``."""
    exec(compile(source, "<awe -c>", "exec"), names)


def run_script(path, argv, names):
    """Run the script at ``path`` as ``__main__`` with ``sys.argv`` = [path, *argv]."""
    saved = sys.argv
    sys.argv = [str(path), *argv]
    try:
        runpy.run_path(str(path), init_globals=names, run_name="__main__")
    finally:
        sys.argv = saved

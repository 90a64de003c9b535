"""The project's layout rules: imports point downwards, and CI runs the README's commands."""

import ast
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FORBIDDEN_IMPORTS = {
    "dataserver": {"awe", "persistence", "targets"},
    "persistence": {"awe", "dataserver", "targets"},
    "targets": {"awe"},
}
"""For each package, the packages it must not import (DESIGN.md, "Layout and layers")."""


def imported_packages(package):
    """Yield ``(path, top-level name)`` for every absolute import in ``package``."""
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield path, alias.name.partition(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                yield path, node.module.partition(".")[0]


def sections(text):
    """Return the sections of reStructuredText ``text`` as ``{title: body}``."""
    lines = text.splitlines()
    titles = [i for i in range(len(lines) - 1)
              if lines[i].strip() and re.fullmatch(r"([=\-~^\"'`#*+])\1*", lines[i + 1])
              and len(lines[i + 1]) >= len(lines[i].strip())]
    ends = titles[1:] + [len(lines)]
    return {lines[i].strip(): "\n".join(lines[i + 2:end]) for i, end in zip(titles, ends)}


def ci_test_command_pattern():
    """Return the pattern `.ci/run` finds the README's test command with, as a Python regex."""
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    match = re.search(r"^TEST_COMMAND_PATTERN='(.+)'$", script, re.MULTILINE)
    assert match, ".ci/run no longer defines TEST_COMMAND_PATTERN"
    return match.group(1).replace("[[:space:]]", r"\s")


@pytest.mark.parametrize("package", sorted(FORBIDDEN_IMPORTS))
def test_imports_point_downwards(package):
    wrong = [f"{path.relative_to(ROOT)} imports {name}"
             for path, name in imported_packages(package)
             if name in FORBIDDEN_IMPORTS[package]]
    assert not wrong, f"{package} must not import {sorted(FORBIDDEN_IMPORTS[package])}: {wrong}"


def test_readme_quick_start_has_two_commands():
    quick_start = sections((ROOT / "README.rst").read_text(encoding="utf-8"))["Quick start"]
    assert quick_start.count(".. code-block:: console") == 2


def test_ci_runs_readme_test_command():
    readme = (ROOT / "README.rst").read_text(encoding="utf-8")
    pattern = re.compile(ci_test_command_pattern())
    found = [line.strip() for line in readme.splitlines() if pattern.search(line)]
    assert len(found) == 1, f"README.rst lines matching {pattern.pattern!r}: {found}"
    assert "pytest" in found[0]
    assert found[0] in sections(readme)["Quick start"]
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert 'eval "$test_command"' in script


def test_ci_script_is_executable():
    assert os.access(ROOT / ".ci" / "run", os.X_OK)

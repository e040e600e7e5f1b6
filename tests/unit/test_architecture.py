"""The house rules of `runbook/`, checked on every `make test` so that the layout cannot drift back.

- the layers and contracts in pyproject.toml hold (import-linter: it counts imports inside functions
  and under TYPE_CHECKING, which what a fresh interpreter has loaded cannot show);
- the contracts really catch an upward import (a copy of the package with one added is refused);
- no module loads another of the project's modules by name (import_module hides arrows from any graph);
- the package graph is shallow, no module is over 450 lines and no function over 80.
"""

from __future__ import annotations

import ast
import functools
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "runbook"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
MAX_PACKAGE_LEVELS = 10
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 80
LONG_BY_NATURE = {("runbook/cli/main.py", "build_parser")}  # one argparse table: splitting it hides the CLI


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": str(LINT_IMPORTS.parent), "PYTHONPATH": str(cwd), "HOME": str(cwd)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_the_import_contracts_hold() -> None:
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "Contracts: 3 kept, 0 broken." in done.stdout, done.stdout[-2000:]


@pytest.mark.parametrize(
    ("module", "line", "says"),
    [
        ("model/types.py", "from runbook.cli import main", "runbook.model is not allowed to import runbook.cli"),
        ("run/runner.py", "from runbook.steps import config", "runbook.run is not allowed to import runbook.steps"),
        ("lab/netns.py", "from runbook.lab import up", "No cycles are allowed in runbook.lab"),
    ],
)
def test_an_upward_import_or_a_circle_breaks_the_contracts(tmp_path: Path, module: str, line: str, says: str) -> None:
    """The same check on a copy of the package with one bad import added inside a function."""
    shutil.copytree(PACKAGE, tmp_path / "runbook", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "runbook" / module
    target.write_text(target.read_text() + f"\n\ndef _added_by_the_test() -> None:\n    {line}  # noqa\n")
    done = lint_imports(tmp_path)
    assert done.returncode != 0 and says in done.stdout, done.stdout[-3000:]


def test_no_module_is_loaded_by_name() -> None:
    found = []
    for path in sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in ("import_module", "__import__"):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found, "import the module instead (an import_module hides the arrow from the layers check): " + ", ".join(found)


def package_of(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_the_package_graph_has_at_most_ten_levels() -> None:
    graph = grimp.build_graph("runbook")
    arrows: dict[str, set[str]] = {}
    for module in graph.modules:
        arrows.setdefault(package_of(module), set()).update(
            package_of(d) for d in graph.find_modules_directly_imported_by(module) if package_of(d) != package_of(module)
        )

    @functools.cache
    def levels(package: str) -> int:  # the contracts forbid circles, so this ends
        return 1 + max((levels(d) for d in arrows[package]), default=0)

    deepest = max(arrows, key=levels)
    assert levels(deepest) <= MAX_PACKAGE_LEVELS, f"{deepest} sits {levels(deepest)} levels up"


def test_modules_and_functions_stay_small() -> None:
    long_modules = [f"{p.relative_to(ROOT)} ({n} lines)" for p in sources() if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES]
    long_functions = []
    for path in sources():
        rel = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and (rel, node.name) not in LONG_BY_NATURE:
                length = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if length > MAX_FUNCTION_LINES:
                    long_functions.append(f"{rel}:{node.lineno} {node.name} ({length} lines)")
    assert not long_modules, f"over {MAX_MODULE_LINES} lines: " + ", ".join(long_modules)
    assert not long_functions, f"over {MAX_FUNCTION_LINES} lines: " + ", ".join(long_functions)

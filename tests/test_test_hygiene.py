"""Tests that test (issue 21, class "tests that do not test"): checks over the source of every test module, so that
the class cannot come back with the next test file.

- `pytestmark` is assigned at most once per module (a second assignment silently drops the first one's skip);
- no assertion reads the wall clock (timings belong in benchmarks/: a limit fails on a busy machine);
- the project's own modules are imported, never `importorskip`-ed or skipped on ImportError (a broken import
  must fail, not hide as a skip);
- an optional extra (pyproject `[project.optional-dependencies]`, `dev` aside) is never imported at module level,
  and every test module that names one is collected cleanly with it missing.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TESTS = sorted((ROOT / "tests").glob("*.py"))
# distribution of an optional extra -> the module it is imported as (a new extra must be added here: test below)
EXTRA_MODULES = {"rerun-sdk": "rerun", "pytest": "pytest"}
CLOCKS = {"time", "perf_counter", "monotonic", "process_time", "time_ns", "perf_counter_ns", "monotonic_ns",
          "process_time_ns", "thread_time"}


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}"


def _optional_modules() -> dict[str, str]:
    """module name -> extra, for every optional extra but `dev` (pytest itself)."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"].get("optional-dependencies", {})
    out = {}
    for extra, requirements in extras.items():
        if extra == "dev":
            continue
        for req in requirements:
            dist = req.split(";")[0].split("[")[0]
            for sep in "<>=!~ ":
                dist = dist.split(sep)[0]
            out[EXTRA_MODULES[dist]] = extra
    return out


def test_every_optional_extra_has_its_module_named() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"].get("optional-dependencies", {})
    for extra, requirements in extras.items():
        for req in requirements:
            dist = req.split(";")[0].split("[")[0]
            for sep in "<>=!~ ":
                dist = dist.split(sep)[0]
            assert dist in EXTRA_MODULES, f"extra {extra!r}: add {dist!r} -> its import name to EXTRA_MODULES"


@pytest.mark.parametrize("path", TESTS, ids=lambda p: p.name)
def test_pytestmark_is_assigned_once(path: Path) -> None:
    marks = [node for node in _tree(path).body if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign))
             and any(isinstance(t, ast.Name) and t.id == "pytestmark"
                     for t in (node.targets if isinstance(node, ast.Assign) else [node.target]))]
    assert len(marks) <= 1, (f"{_where(path, marks[1])}: pytestmark assigned again, which drops the marks of "
                             f"{_where(path, marks[0])}: give one list")


def _is_clock_call(node: ast.AST, clock_names: set[str]) -> bool:
    if not isinstance(node, ast.Call):
        return False
    f = node.func
    if isinstance(f, ast.Attribute) and f.attr in CLOCKS and isinstance(f.value, ast.Name) and f.value.id == "time":
        return True
    return isinstance(f, ast.Name) and f.id in clock_names


def _reads_clock(node: ast.AST, timed: set[str], clock_names: set[str]) -> bool:
    return any(_is_clock_call(n, clock_names) or isinstance(n, ast.Name) and n.id in timed for n in ast.walk(node))


def wall_clock_asserts(tree: ast.Module) -> list[ast.Assert]:
    """Assertions that read the wall clock, directly or through a variable computed from it (per function)."""
    clock_names = {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                   and node.module == "time" for alias in node.names if alias.name in CLOCKS}
    found = []
    for fn in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
        timed: set[str] = set()
        for _ in range(3):  # names computed from names computed from the clock
            for node in ast.walk(fn):
                if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)) and node.value is not None \
                        and _reads_clock(node.value, timed, clock_names):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    timed |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        found += [n for n in ast.walk(fn) if isinstance(n, ast.Assert) and _reads_clock(n.test, timed, clock_names)]
    return found


def test_the_wall_clock_check_finds_limits() -> None:
    src = ("import time\nfrom time import perf_counter as pc\n"
           "def test_a():\n    t = time.perf_counter()\n    run()\n    elapsed = time.perf_counter() - t\n"
           "    assert elapsed < 1.0\n"
           "def test_b():\n    t = pc()\n    assert (pc() - t) / 5 < 0.1\n"
           "def test_c():\n    deadline = time.time() + 60\n    while time.time() < deadline:\n        pass\n"
           "    assert done()\n")
    assert [a.lineno for a in wall_clock_asserts(ast.parse(src))] == [7, 10]


@pytest.mark.parametrize("path", TESTS, ids=lambda p: p.name)
def test_no_wall_clock_limit_in_unit_tests(path: Path) -> None:
    bad = wall_clock_asserts(_tree(path))
    assert not bad, (f"{', '.join(_where(path, a) for a in bad)}: a wall-clock limit fails on a busy machine: "
                     "measure it in benchmarks/ and keep only the behavioural assertion here")


def _own(name: str) -> bool:
    return name == "occworld_tokyo" or name.startswith("occworld_tokyo.")


@pytest.mark.parametrize("path", TESTS, ids=lambda p: p.name)
def test_own_modules_are_never_skipped_when_missing(path: Path) -> None:
    tree = _tree(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "importorskip" \
                and node.args and isinstance(node.args[0], ast.Constant) and _own(str(node.args[0].value)):
            pytest.fail(f"{_where(path, node)}: importorskip({node.args[0].value!r}) hides a broken import of the "
                        "project as a skip: import it")
        if isinstance(node, ast.Try):
            imports_own = any(isinstance(n, ast.Import) and any(_own(a.name) for a in n.names)
                              or isinstance(n, ast.ImportFrom) and _own(n.module or "")
                              for stmt in node.body for n in ast.walk(stmt))
            catches = {n.id for h in node.handlers if h.type is not None for n in ast.walk(h.type)
                       if isinstance(n, ast.Name)}
            assert not (imports_own and catches & {"ImportError", "ModuleNotFoundError", "Exception"}), (
                f"{_where(path, node)}: an ImportError of the project's own module is caught: let it fail")


def _module_level_imports(tree: ast.Module):
    """Import statements that run when the module is imported (module body, its if/try blocks; not functions)."""
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            for field in ("body", "orelse", "finalbody", "handlers"):
                todo += getattr(node, field, [])
        elif isinstance(node, ast.ExceptHandler):
            todo += node.body


def _names_optional(path: Path, optional: dict[str, str]) -> set[str]:
    text = path.read_text(encoding="utf-8")
    return {m for m in optional if f"import {m}" in text or f"from {m}" in text or f'"{m}' in text
            or f"'{m}" in text}


@pytest.mark.parametrize("path", TESTS, ids=lambda p: p.name)
def test_optional_extras_are_not_imported_at_module_level(path: Path) -> None:
    optional = _optional_modules()
    for node in _module_level_imports(_tree(path)):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
        for name in names:
            top = name.split(".")[0]
            assert top not in optional, (
                f"{_where(path, node)}: `{top}` comes from the optional extra [{optional[top]}]; without it the "
                f"module fails to collect: use pytest.importorskip({name!r}) in the tests that need it")


def test_modules_naming_an_extra_collect_without_it(tmp_path: Path) -> None:
    """Collect every test module that names an optional extra in a Python where that extra cannot be imported."""
    optional = _optional_modules()
    files = [p for p in TESTS if p.name != Path(__file__).name and _names_optional(p, optional)]
    if not files:
        pytest.skip("no test module names an optional extra")
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    for module in optional:
        (blocked / module).mkdir()
        (blocked / module / "__init__.py").write_text(f"raise ImportError('{module} blocked by the hygiene test')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocked), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                           *map(str, files)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "error" not in proc.stdout.lower(), proc.stdout[-3000:] + proc.stderr[-2000:]
    probe = subprocess.run([sys.executable, "-c", f"import {next(iter(optional))}"], env=env, capture_output=True, text=True)
    assert probe.returncode != 0 and "blocked" in probe.stderr  # the block itself works


def test_viewer_tests_skip_cleanly_without_the_viz_extra(monkeypatch) -> None:
    import test_viewer

    monkeypatch.setitem(sys.modules, "rerun", None)  # `import rerun` now raises ImportError
    monkeypatch.delitem(sys.modules, "rerun.chunk", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"viz extra is not installed"):
        test_viewer._rrd_reader()

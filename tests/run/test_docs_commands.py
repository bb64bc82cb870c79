"""Every command in the docs runs, and docs/api.md's signatures are the code's.

The rules for what runs are in tests/doc_commands.py (and docs/README.md): each
guide's ```bash / ```console commands and ```python blocks run in order in one
temporary folder, with `dpsynth` meaning `python -m dpsynth` from this checkout.
The officer's and auditor's guides run together (the auditor reads the officer's
ledger) in tests/ledger/test_docs.py; every other guide runs here, as does every
script under docs/examples.  Install commands are not run (the README's first
command has its own test).
"""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.doc_commands import DOCS, REPO, doc_steps, run_steps

# Run together, in tests/ledger/test_docs.py.
ROLE_WORKFLOW = ("officer.md", "auditor.md")
GUIDES = sorted(p.name for p in DOCS.glob("*.md") if p.name not in ROLE_WORKFLOW)
EXAMPLES = sorted(p.name for p in (DOCS / "examples").glob("*.py"))

# What each guide's output must show, beyond every step exiting as documented.
EXPECTED_OUTPUT = {
    "researcher.md": ["run report:", "OK (nothing was measured or charged)", "output.synthetic:",
                      "receipts, first entry #", "results: comparison/results.csv", "OK: ",
                      "an entry of the verified ledger demo/ledger.db"],
}
EXPECTED_FILES = {
    "researcher.md": ["demo/out/synthetic.csv", "demo/out-mst/synthetic.csv", "demo/out-mst/model.pt",
                      "demo/out-mst/report.html", "demo/mst.pt", "comparison/results.csv", "comparison/index.html"],
}


def test_every_guide_is_covered():
    """A new guide is picked up here automatically; the role guides run in tests/ledger."""
    assert "researcher.md" in GUIDES and "concepts.md" in GUIDES and "api.md" in GUIDES
    for name in ROLE_WORKFLOW:
        assert (DOCS / name).is_file()


@pytest.mark.slow
@pytest.mark.parametrize("guide", GUIDES)
def test_guide_commands_run(guide, tmp_path):
    steps = doc_steps(DOCS / guide)
    proc = run_steps(steps, tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    for text in EXPECTED_OUTPUT.get(guide, []):
        assert text in out, f"{guide}: the output lacks {text!r}\n{out[-3000:]}"
    for name in EXPECTED_FILES.get(guide, []):
        assert (tmp_path / name).is_file(), f"{guide}: {name} was not written"
    if guide == "researcher.md":
        # The documented JOB.toml is the one that ran, and its spend is in the ledger.
        assert any(s.kind == "write" and s.path == "demo/mst-job.toml" for s in steps)
        page = (tmp_path / "demo/out-mst/report.html").read_text()
        assert "mst" in page and "not for release" in page


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES)
def test_example_script_runs(example, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(DOCS / "examples" / example)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "epsilon" in proc.stdout  # every example reports what it spent or computed


def test_install_commands_are_the_only_ones_left_out():
    """The extraction rule drops install commands and nothing else."""
    from tests.doc_commands import _commands

    steps = _commands(["pip install dpsynth", "python3 -m venv .venv", ".venv/bin/pip install -e .",
                       "# a comment", "", "dpsynth ledger status ledger.db  # exits 2", "echo a \\", "b"])
    assert [(s.text, s.expected) for s in steps] == [("dpsynth ledger status ledger.db", 2), ("echo a b", 0)]


# --------------------------------------------------------------------------- docs/api.md

def _api_blocks() -> list[tuple[str, ast.Module]]:
    text = (DOCS / "api.md").read_text(encoding="utf-8")
    blocks = []
    for body in re.findall(r"```python\n(.*?)```", text, flags=re.S):
        m = re.match(r"# module: ([\w.]+)\n", body)
        assert m, f"an api.md block does not name its module: {body[:80]!r}"
        blocks.append((m.group(1), ast.parse(body)))
    return blocks


def _resolve_default(node: ast.expr, module) -> object:
    try:
        return ast.literal_eval(node)
    except ValueError:
        pass
    assert isinstance(node, ast.Name), ast.dump(node)
    from accountant.events import NeighbouringRelation
    import accountant

    for space in (vars(module), vars(accountant), vars(builtins), NeighbouringRelation.__members__):
        if node.id in space:
            return space[node.id]
    raise AssertionError(f"api.md names an unknown default {node.id!r}")


def _same_default(doc: object, code: object) -> bool:
    if isinstance(code, np.ndarray) or isinstance(doc, np.ndarray):
        return np.array_equal(doc, code)
    if isinstance(code, (list, tuple)) and isinstance(doc, (list, tuple)):
        return tuple(doc) == tuple(code)
    return doc is code or doc == code


def _check_function(stub: ast.FunctionDef, func, module, where: str) -> list[str]:
    kinds = {"args": inspect.Parameter.POSITIONAL_OR_KEYWORD, "kwonlyargs": inspect.Parameter.KEYWORD_ONLY}
    documented = []
    a = stub.args
    positional_defaults = [None] * (len(a.args) - len(a.defaults)) + list(a.defaults)
    for arg, default in zip(a.args, positional_defaults):
        documented.append((arg.arg, kinds["args"], default))
    for arg, default in zip(a.kwonlyargs, a.kw_defaults):
        documented.append((arg.arg, kinds["kwonlyargs"], default))
    if a.kwarg:
        documented.append((a.kwarg.arg, inspect.Parameter.VAR_KEYWORD, None))
    documented = [d for d in documented if d[0] not in ("self", "cls")]
    actual = [p for p in inspect.signature(func).parameters.values() if p.name not in ("self", "cls")]
    # Underscored parameters are internal (test hooks) and not documented.
    actual = [p for p in actual if not p.name.startswith("_")]
    problems = []
    if [(n, k) for n, k, _ in documented] != [(p.name, p.kind) for p in actual]:
        problems.append(f"{where}: documented {[(n, str(k)) for n, k, _ in documented]} but the code has "
                        f"{[(p.name, str(p.kind)) for p in actual]}")
        return problems
    for (name, _, node), p in zip(documented, actual):
        if node is None:
            if p.default is not inspect.Parameter.empty and p.kind is not p.VAR_KEYWORD:
                problems.append(f"{where}: {name} has a default ({p.default!r}) the docs omit")
        elif p.default is inspect.Parameter.empty:
            problems.append(f"{where}: {name} has no default in the code")
        elif not _same_default(_resolve_default(node, module), p.default):
            problems.append(f"{where}: {name} defaults to {p.default!r}, not {ast.unparse(node)}")
    return problems


def test_api_reference_matches_the_code():
    problems, checked = [], 0
    for module_name, tree in _api_blocks():
        module = importlib.import_module(module_name)
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                assert hasattr(module, node.name), f"{module_name}.{node.name} does not exist"
                problems += _check_function(node, getattr(module, node.name), module, f"{module_name}.{node.name}")
                checked += 1
            elif isinstance(node, ast.ClassDef):
                assert hasattr(module, node.name), f"{module_name}.{node.name} does not exist"
                cls = getattr(module, node.name)
                for item in node.body:
                    if isinstance(item, ast.FunctionDef):
                        assert hasattr(cls, item.name), f"{module_name}.{node.name}.{item.name} does not exist"
                        problems += _check_function(item, getattr(cls, item.name), module,
                                                    f"{module_name}.{node.name}.{item.name}")
                        checked += 1
    assert not problems, "\n".join(problems)
    assert checked >= 60

"""What proofs/*.md and docs/*.md cite: tests (`tests/...py::name`) and code (`module.name`,
`Class.method`), and whether each exists in this tree."""

from __future__ import annotations

import ast
import importlib
import re
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEST_CITATION = re.compile(r"tests/[A-Za-z0-9_/]+\.py::[A-Za-z_][A-Za-z0-9_]*")
CODE_CITATION = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+)(?:\([^`]*\))?`")
# Dotted names that are not code of this repository: the standard library, third-party
# modules, policy fields (TOML tables) and file names.
NOT_CODE_PREFIXES = ("math.", "os.", "secrets.", "torch.", "np.", "numpy.", "opacus.", "scipy.", "budget.",
                     "dataset.", "hashlib.", "json.", "random.")
FILE_SUFFIXES = (".py", ".md", ".csv", ".toml", ".json", ".jsonl", ".db", ".html")


def documents(*folders: str) -> list[Path]:
    return sorted(p for f in folders for p in (ROOT / f).glob("*.md"))


def cited_tests(paths) -> set[str]:
    return {m.group(0) for p in paths for m in TEST_CITATION.finditer(p.read_text(encoding="utf-8"))}


def code_citations(paths) -> set[tuple[str, str]]:
    out = set()
    for p in paths:
        for m in CODE_CITATION.finditer(p.read_text(encoding="utf-8")):
            name = m.group(1)
            if name.startswith(NOT_CODE_PREFIXES) or name.endswith(FILE_SUFFIXES):
                continue
            out.add((p.name, name))
    return out


def cited_test_exists(citation: str) -> bool:
    path, _, name = citation.partition("::")
    file = ROOT / path
    if not file.is_file():
        return False
    tree = ast.parse(file.read_text(encoding="utf-8"))
    return any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == name for n in tree.body)


@lru_cache(maxsize=None)
def _index():
    """(module path -> top-level names, module path -> its classes, class -> (attributes, bases))."""
    modules: dict[str, set[str]] = {}
    module_classes: dict[str, set[str]] = {}
    classes: dict[str, tuple[set[str], list[str]]] = {}
    for p in [*ROOT.glob("accountant/**/*.py"), *ROOT.glob("dpsynth/**/*.py")]:
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        tree = ast.parse(p.read_text(encoding="utf-8"))
        top, own = set(), set()
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                top.add(node.name)
            elif isinstance(node, ast.Assign):
                top |= {t.id for t in node.targets if isinstance(t, ast.Name)}
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                top.add(node.target.id)
            elif isinstance(node, ast.ImportFrom) and node.level:  # a package re-exporting its parts
                top |= {a.asname or a.name for a in node.names}
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                own.add(node.name)
                attrs = set()
                for n in ast.walk(node):
                    if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        attrs.add(n.name)
                    targets = n.targets if isinstance(n, ast.Assign) else [n.target] if isinstance(
                        n, ast.AnnAssign) else []
                    for t in targets:
                        if isinstance(t, ast.Attribute):
                            attrs.add(t.attr)
                        elif isinstance(t, ast.Name):
                            attrs.add(t.id)
                entry = classes.setdefault(node.name, (set(), []))
                entry[0].update(attrs)
                entry[1].extend(b.id for b in node.bases if isinstance(b, ast.Name))
        for i in range(len(parts)):
            key = ".".join(parts[i:])
            modules.setdefault(key, set()).update(top)
            module_classes.setdefault(key, set()).update(own)
    return modules, module_classes, classes


def _class_has(name: str, attr: str, seen: tuple = ()) -> bool:
    _, _, classes = _index()
    if name not in classes or name in seen:
        return False
    attrs, bases = classes[name]
    return attr in attrs or any(_class_has(b, attr, (*seen, name)) for b in bases)


def code_exists(name: str) -> bool:
    parts = name.split(".")
    if parts[0] in ("accountant", "dpsynth"):
        for cut in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            try:
                for attr in parts[cut:]:
                    obj = getattr(obj, attr)
                return True
            except AttributeError:
                break
    modules, module_classes, _ = _index()
    if name in modules:  # a module (`compare.runner`)
        return True
    head, last = ".".join(parts[:-1]), parts[-1]
    if len(parts) == 2 and _class_has(parts[0], last):
        return True
    if head in modules and (last in modules[head] or any(_class_has(c, last) for c in module_classes[head])):
        return True
    if len(parts) >= 3 and ".".join(parts[:-2]) in modules and _class_has(parts[-2], last):
        return True
    return False

"""Proofs and docs must not disagree with the code (threat model #13): every test and every
function a proof cites exists in this tree."""

from __future__ import annotations

import warnings

from .citations import code_citations, code_exists, cited_test_exists, cited_tests, documents

# Citations known to be wrong (none now).  The test fails on any other missing name, and
# warns once one of these is fixed.
KNOWN_DOC_PROBLEMS: dict[str, str] = {}


def test_proof_citing_a_missing_function_or_test_is_refused():
    docs = documents("proofs", "docs")
    tests = cited_tests(docs)
    assert len(tests) > 50, "the citation pattern no longer matches the documents"
    missing = sorted(t for t in tests if not cited_test_exists(t))
    unexpected = [t for t in missing if t not in KNOWN_DOC_PROBLEMS]
    assert not unexpected, f"cited tests that do not exist: {unexpected}"
    code = code_citations(documents("proofs"))
    assert len(code) > 100
    unresolved = sorted(f"{doc}: {name}" for doc, name in code if not code_exists(name))
    assert not unresolved, f"cited functions that do not exist: {unresolved}"
    for fixed in set(KNOWN_DOC_PROBLEMS) - set(missing):
        warnings.warn(f"{fixed} is no longer a doc problem: remove it from KNOWN_DOC_PROBLEMS", stacklevel=1)


def test_the_citation_checker_catches_a_missing_name():
    assert not code_exists("accountant.gate.Gate.no_such_method")
    assert not code_exists("Gate.no_such_method")
    assert not code_exists("sensitivity.no_such_check")
    assert code_exists("Gate._check_head") and code_exists("sensitivity.check_votes")
    assert code_exists("dpsynth.generators.DPCTGAN") and code_exists("learning.discover_categories")
    assert not cited_test_exists("tests/security/test_proofs.py::test_no_such_test")
    assert cited_test_exists("tests/security/test_proofs.py::test_proof_citing_a_missing_function_or_test_is_refused")

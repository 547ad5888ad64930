"""The CEL engine: compile-time checks, inputs with defaults (no expression meets an absent key), scan facts."""

from __future__ import annotations

import pytest

from wharf.core.errors import InvalidInput
from wharf.core.policy import compile_expression, default_inputs, digest, facts_to_inputs, _merge


@pytest.mark.parametrize("expr, msg", [
    ("name ==", "invalid CEL expression"),
    ("nme == 'x'", "unknown variable(s) nme"),
    ("name", "must give true or false"),
    ("", "needs a CEL expression"),
])
def test_bad_expressions_are_refused_with_the_reason(expr, msg):
    with pytest.raises(InvalidInput) as exc:
        compile_expression(expr)
    assert msg in exc.value.message


@pytest.mark.parametrize("expr", [
    'vulnerabilities.max_severity == "critical"',
    "vulnerabilities.count > 0 && vulnerabilities.fixable == vulnerabilities.count",
    'license.startsWith("GPL") || licenses.exists(l, l.matches("^AGPL"))',
    '"internal" in tags && age_days < 7.0',
    'provenance.source_repository == "dev" && repository == "staging" && uploader != ""',
    'format == "npm" && name.startsWith("@acme/") && event == "promotion"',
    'has(facts.typosquat) && facts.typosquat == true',
])
def test_expressions_evaluate_on_defaults(expr):
    program = compile_expression(expr)
    assert program.execute(default_inputs()) is False


def test_scan_facts_become_inputs_tolerantly():
    inputs = _merge(default_inputs(), facts_to_inputs({"max_severity": "CRITICAL", "count": 3, "fixable": 1,
                                                        "license": "GPL-3.0-only OR MIT", "scanned": True}))
    assert inputs["vulnerabilities"]["max_severity"] == "critical"
    assert inputs["vulnerabilities"]["max_severity_rank"] == 4
    assert inputs["vulnerabilities"]["count"] == 3 and inputs["vulnerabilities"]["high"] == 0
    assert inputs["license"] == "GPL-3.0-only OR MIT" and inputs["licenses"] == ["GPL-3.0-only", "MIT"]
    assert inputs["facts"]["scanned"] is True
    nested = facts_to_inputs({"vulnerabilities": {"max_severity": "moderate", "count": 1}, "license": {"spdx": "MIT"}})
    assert nested["vulnerabilities"]["max_severity"] == "medium" and nested["license"] == "MIT"
    assert compile_expression('vulnerabilities.max_severity_rank >= 3').execute(inputs) is True


def test_inputs_digest_is_stable():
    a = default_inputs()
    b = dict(reversed(list(default_inputs().items())))
    assert digest(a) == digest(b) and len(digest(a)) == 64
    a["name"] = "x"
    assert digest(a) != digest(b)

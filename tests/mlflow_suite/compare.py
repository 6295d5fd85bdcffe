"""Compares a Cairn run of MLflow's server tests with the reference run against MLflow itself.

    python compare.py target/mlflow-suite-reference.xml target/mlflow-suite.xml

The denominator is every test that passed against MLflow (an unexpected pass of an `xfail` test
included, as it too shows what MLflow's server does); the line printed says how many of those
pass against Cairn, and each one that does not is listed with what it did instead.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET


def outcomes(junit_path: str) -> dict[str, str]:
    """Test id to `passed`, `failed`, `error` or `skipped`, read from a JUnit report."""
    result = {}
    for case in ET.parse(junit_path).getroot().iter("testcase"):
        tags = {child.tag for child in case}
        outcome = next((t for t in ("failure", "error", "skipped") if t in tags), "passed")
        result[f"{case.get('classname')}::{case.get('name')}"] = {"failure": "failed"}.get(outcome, outcome)
    return result


def main(reference_path: str, cairn_path: str) -> int:
    reference, cairn = outcomes(reference_path), outcomes(cairn_path)
    denominator = [test for test, outcome in reference.items() if outcome == "passed"]
    missing = [test for test in denominator if cairn.get(test) != "passed"]
    print(f"{len(denominator) - len(missing)} of the {len(denominator)} tests that pass against MLflow pass against Cairn")
    for test in missing:
        print(f"  {cairn.get(test, 'not run')}: {test}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))

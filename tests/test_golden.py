"""End-to-end golden output, as node_exporter keeps for its collectors: the demo cluster's
and the clean fixture's `/metrics` exposition and findings, byte for byte.

A change that alters what users see fails here and shows the diff; when the change is
intended, regenerate with `OV_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_golden.py`
and review the golden files' diff in the commit.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("OV_UPDATE_GOLDEN") == "1"

# Samples that measure the run itself (durations, wall-clock times) change every run.
VOLATILE = re.compile(
    r"^((?:ov_check_duration_seconds|ov_check_last_success_timestamp_seconds|ov_evaluation_duration_seconds"
    r"|ov_last_evaluation_timestamp_seconds)(?:\{[^}]*\})?) \S+$",
    re.MULTILINE,
)

CASES = {
    "demo.prom": ["--demo", "--output", "prom"],
    "demo-findings.json": ["--demo", "--output", "json"],
    "clean.prom": ["--snapshot", str(ROOT / "tests" / "fixtures" / "clean"), "--output", "prom"],
}


def _run(args: list[str]) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "ov_exporter", "check", "--fail-on", "never", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    return VOLATILE.sub(r"\1 <volatile>", proc.stdout)


@pytest.mark.parametrize("name", sorted(CASES))
def test_output_matches_the_golden_file(name):
    out = _run(CASES[name])
    path = GOLDEN / name
    if UPDATE:
        path.write_text(out)
    assert path.exists(), f"{path.relative_to(ROOT)} missing: run with OV_UPDATE_GOLDEN=1 to create it"
    want = path.read_text()
    assert out == want, f"{name} differs from {path.relative_to(ROOT)} (intended? OV_UPDATE_GOLDEN=1)"


def test_volatile_samples_are_the_only_ones_masked():
    """The mask hides run measurements only: every masked family is a duration or a time."""
    masked = {m.split("{")[0] for m in re.findall(r"^(\S+) <volatile>$", (GOLDEN / "demo.prom").read_text(), re.M)}
    assert masked and all(m.endswith(("_seconds",)) for m in masked)
    assert len(masked) == 4

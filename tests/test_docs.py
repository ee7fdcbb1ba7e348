"""README, registry and exposition agree: nothing documented that is not exported, and back."""
from __future__ import annotations

import re

from ov_exporter import docs
from ov_exporter.checks import CHECKS
from ov_exporter.config import Config
from ov_exporter.runner import evaluate
from ov_exporter.render import History, SourceStats, all_families, exposition_name, render
from ov_exporter.store import ClusterState

from .conftest import ROOT

README = ROOT / "README.md"


def test_readme_reference_tables_are_generated_from_the_registry():
    text = README.read_text()
    assert docs.update(text, ROOT) == text, "run: .venv/bin/python -m ov_exporter.docs README.md"


def test_readme_names_the_two_commands():
    text = README.read_text()
    assert "make demo" in text and "make test" in text


def test_every_family_in_the_exposition_is_documented_and_vice_versa():
    evaluation = evaluate(ClusterState.from_records([]), Config())
    history = History()
    history.record(evaluation)
    body = render(evaluation, history, SourceStats({}, 0, 0)).text.decode()
    exposed = set(re.findall(r"^# TYPE (\S+) ", body, re.M))
    documented = {exposition_name(f) for _, f in all_families()}
    assert exposed == documented
    table = README.read_text()
    for _, fam in all_families():
        assert f"`{exposition_name(fam)}`" in table


def test_metric_names_follow_conventions():
    for owner, fam in all_families():
        assert re.fullmatch(r"ov_[a-z0-9_]+", fam.name), fam.name
        assert fam.help.endswith("."), fam.name
        assert (fam.type == "counter") == fam.name.endswith("_total"), fam.name
        assert fam.type in ("gauge", "counter", "info"), fam.name
        for label in fam.labels:
            assert re.fullmatch(r"[a-z_]+", label) and label not in ("uid", "message"), (fam.name, label)
        if "seconds" in fam.name or "bytes" in fam.name:
            assert fam.name.endswith(("_seconds", "_bytes", "_bytes_per_second", "_timestamp_seconds")), fam.name


def test_every_check_declares_what_users_need():
    ids = [s.id for s in CHECKS]
    assert len(ids) == len(set(ids))
    for spec in CHECKS:
        assert 1 <= spec.anti_pattern <= 19
        assert spec.title and spec.remediation and spec.severity_rules and spec.families
        assert spec.runbook == f"runbooks/{spec.id}.md"
        assert (ROOT / "exporter" / "ov_exporter" / "checks" / spec.id / "runbook.md").is_file()


def test_checks_declare_kinds_that_exist_and_the_clusterrole_can_read():
    from ov_exporter.records import KIND_BY_KEY

    for spec in CHECKS:
        for key in (*spec.requires, *spec.reads):
            assert key in KIND_BY_KEY, (spec.id, key)
        assert spec.requires, spec.id


def test_readme_intro_counts_the_checks():
    from ov_exporter.checks import CHECKS
    from ov_exporter.coverage import coverage

    text = (ROOT / "README.md").read_text()
    words = {16: "Sixteen", 17: "seventeen"}
    covered = sum(1 for c in coverage() if c.checks)
    assert f"{words.get(covered, covered)} of the nineteen are" in text
    assert f"measured by the {len(CHECKS)} checks below" in text

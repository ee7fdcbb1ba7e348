"""The documents, the declarations and the exposition agree: nothing documented that is
not exported, and back; every generated section current; every relative link resolves."""

from __future__ import annotations

import re

import pytest
from ov_exporter import docs
from ov_exporter.checks import CHECKS
from ov_exporter.config import Config
from ov_exporter.render import History, SourceStats, all_families, exposition_name, render
from ov_exporter.runner import evaluate
from ov_exporter.store import ClusterState

from .conftest import ROOT

README = ROOT / "README.md"
REFERENCE = ROOT / "exporter" / "docs" / "reference.md"
DOCUMENTS = sorted(set(docs.DOCUMENTS.values()))
LINKED = [
    "README.md",
    "exporter/docs/usage.md",
    "exporter/docs/reference.md",
    "exporter/docs/upstream.md",
    "alerts/README.md",
    "deploy/README.md",
]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_generated_sections_are_current(document):
    text = (ROOT / document).read_text()
    assert docs.update(text, ROOT, document) == text, f"run: .venv/bin/python -m ov_exporter.docs {document}"


def test_the_readme_is_a_front_door():
    text = README.read_text()
    assert "make demo" in text and "make test" in text
    assert len(text.encode()) < 20_000, f"README.md is {len(text.encode())} bytes: move detail to exporter/docs/"


def test_the_readme_names_every_debian_package_make_test_installs():
    makefile = (ROOT / "Makefile").read_text()
    declared = re.search(r"^SYSTEM_DEPS := (.*?)\n\n", makefile, re.M | re.S).group(1)
    packages = {pair.split(":")[1] for pair in declared.replace("\\", " ").split()}
    assert {"prometheus", "prometheus-alertmanager"} <= packages
    two_commands = README.read_text().split("## Two commands", 1)[1].split("\n## ", 1)[0]
    # The image tools are summed up as "what it needs to build the image".
    image_tools = {"runc", "debootstrap", "uidmap", "slirp4netns", "fuse-overlayfs"}
    missing = {p for p in packages - image_tools if f"`{p}`" not in two_commands}
    assert not missing, f"README.md's two commands do not name the Debian packages {sorted(missing)}"


def _anchors(text: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", text, re.M)}


@pytest.mark.parametrize("document", LINKED)
def test_relative_links_resolve(document):
    path = ROOT / document
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://|mailto:", target):
            continue
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        assert dest.exists(), f"{document}: broken link {target}"
        if anchor and dest.suffix == ".md":
            assert anchor in _anchors(dest.read_text()), f"{document}: no heading for #{anchor} in {file or document}"


def test_every_family_in_the_exposition_is_documented_and_vice_versa():
    evaluation = evaluate(ClusterState.from_records([]), Config())
    history = History()
    history.record(evaluation)
    body = render(evaluation, history, SourceStats({}, 0, 0)).text.decode()
    exposed = set(re.findall(r"^# TYPE (\S+) ", body, re.M))
    documented = {exposition_name(f) for _, f in all_families()}
    assert exposed == documented
    table = REFERENCE.read_text()
    for _, fam in all_families():
        assert f"`{exposition_name(fam)}`" in table


def test_metric_names_follow_conventions():
    for _, fam in all_families():
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

    text = " ".join((ROOT / "README.md").read_text().split())
    words = {16: "sixteen", 17: "seventeen"}
    covered = sum(1 for c in coverage() if c.checks)
    assert f"{len(CHECKS)} checks measure {words.get(covered, covered)} of them" in text
    assert (
        f"the other {19 - covered}" in text
        or f"the other {['zero', 'one', 'two', 'three', 'four'][19 - covered]}" in text
    )

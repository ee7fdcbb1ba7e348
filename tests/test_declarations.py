"""A check's declaration is the index of its story: what it declares must be what the
rest of the repository does. Each test reads the real artefact (rule files parsed with
a real PromQL parser, the runbooks on disk) and compares it with the declarations, so
an alert, a runbook or an owner cannot be added, renamed or dropped on one side only."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ov_exporter.checks import CHECKS
from ov_exporter.coverage import UPSTREAM_ALERTS
from ov_exporter.render import exposition_name

from .conftest import ROOT, promql_metric_names

ALERTS = ROOT / "alerts"
NOT_RULES = {"upstream-metrics.yaml"}


def _rules() -> list[tuple[Path, dict]]:
    out = []
    for path in sorted(ALERTS.glob("*.yaml")):
        if path.name in NOT_RULES:
            continue
        for group in yaml.safe_load(path.read_text())["groups"]:
            out += [(path, rule) for rule in group["rules"]]
    return out


RULES = _rules()
RECORDS: dict[str, list[str]] = {}
for _, _rule in RULES:
    if "record" in _rule:
        RECORDS.setdefault(_rule["record"], []).append(_rule["expr"])
OWNER = {exposition_name(f): s.id for s in CHECKS for f in s.families}
DECLARED = {a.name: (s.id, a) for s in CHECKS for a in s.alerts}


def _reads(expr: str, seen: frozenset[str] = frozenset()) -> set[str]:
    """Metric names an expression reads, through recording rules."""
    names: set[str] = set()
    for name in promql_metric_names(expr):
        if name in RECORDS and name not in seen:
            for sub in RECORDS[name]:
                names |= _reads(sub, seen | {name})
        else:
            names.add(name)
    return names


def _alert_rules() -> dict[str, list[dict]]:
    alerts: dict[str, list[dict]] = {}
    for _, rule in RULES:
        if "alert" in rule:
            alerts.setdefault(rule["alert"], []).append(rule)
    return alerts


ALERT_RULES = _alert_rules()


def test_every_declared_alert_exists_at_the_declared_severities_with_their_impact():
    assert len(DECLARED) == sum(len(s.alerts) for s in CHECKS), "an alert is declared by two checks"
    for name, (check, decl) in DECLARED.items():
        assert name in ALERT_RULES, f"{check} declares {name}, which no file in alerts/ defines"
        defined = {rule["labels"]["severity"]: rule["labels"]["impact"] for rule in ALERT_RULES[name]}
        assert defined == decl.impacts, f"{name}: severity -> impact {defined} in alerts/, {decl.impacts} in {check}"


@pytest.mark.parametrize("name", sorted(ALERT_RULES))
def test_an_alert_reading_a_check_family_is_declared_by_one_of_those_checks(name):
    readers = {OWNER[m] for rule in ALERT_RULES[name] for m in _reads(rule["expr"]) if m in OWNER}
    upstream = {a for names in UPSTREAM_ALERTS.values() for a in names}
    if name in DECLARED:
        check = DECLARED[name][0]
        assert check in readers, f"{name} is declared by {check} but reads none of its families ({sorted(readers)})"
    else:
        assert not readers, f"{name} reads families of {sorted(readers)}: declare it in one of their SPECs"
        assert name.startswith("OVExporter") or name in upstream or name == "OVEtcdMetricsAbsent", (
            f"{name} belongs to no check, to no anti-pattern covered by upstream metrics, nor to exporter health"
        )


@pytest.mark.parametrize("spec", CHECKS, ids=lambda s: s.id)
def test_declared_alerts_have_a_runbook_that_links_the_check_runbook(spec):
    for decl in spec.alerts:
        runbook = ALERTS / "runbooks" / f"{decl.name}.md"
        assert runbook.is_file(), f"{spec.id}: {decl.name} has no alerts/runbooks/{decl.name}.md"
        link = f"exporter/ov_exporter/checks/{spec.id}/runbook.md"
        assert link in runbook.read_text(), f"{runbook.name} does not link the check's runbook ({link})"


def _prose_sentences(text: str) -> set[str]:
    """Sentences of eight words or more outside code blocks, case and spacing folded."""
    import re

    text = re.sub(r"```.*?```", " ", text, flags=re.S)
    text = re.sub(r"\s+", " ", text)
    return {s.strip().lower() for s in re.split(r"(?<=[.!?:])\s", text) if len(s.split()) >= 8}


@pytest.mark.parametrize("spec", CHECKS, ids=lambda s: s.id)
def test_the_check_story_is_written_once_and_linked_from_its_alerts(spec):
    """The check's runbook tells the anti-pattern's story; an alert's runbook says what
    firing means and what to do, and links the check's runbook instead of repeating it.
    (Commands may repeat: on-call needs them where they read.)"""
    story = _prose_sentences((ROOT / "exporter" / "ov_exporter" / "checks" / spec.id / "runbook.md").read_text())
    for decl in spec.alerts:
        repeated = story & _prose_sentences((ALERTS / "runbooks" / f"{decl.name}.md").read_text())
        assert not repeated, f"alerts/runbooks/{decl.name}.md repeats the check's runbook: {sorted(repeated)[:2]}"


# ---------------------------------------------------------------- settings


class _Recording:
    """A Config (or one of its sections) that records every setting read through it."""

    # Properties of Config and the settings they are made of.
    DERIVED = {
        "cpu-target": ("profile", "thresholds.cpu-overcommit-target"),
        "migration-link-bytes-per-second": ("migration-link-speed",),
    }

    def __init__(self, target, prefix: str, seen: set[str]) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_prefix", prefix)
        object.__setattr__(self, "_seen", seen)

    def __getattr__(self, name: str):
        import msgspec

        value = getattr(self._target, name)
        key = self._prefix + name.replace("_", "-")
        if isinstance(value, msgspec.Struct):
            return _Recording(value, key + ".", self._seen)
        if not callable(value):
            self._seen.update(self.DERIVED.get(key, (key,)))
        return value


def _states():
    from ov_exporter.sources import DemoSource, SnapshotSource
    from ov_exporter.store import Store

    for source in (DemoSource(), SnapshotSource(ROOT / "tests" / "fixtures" / "clean")):
        store = Store()
        source.load(store.apply)
        yield source.describe(), store.state()


@pytest.mark.parametrize("spec", CHECKS, ids=lambda s: s.id)
def test_a_check_reads_only_the_settings_it_declares(spec):
    from ov_exporter.config import Config, reference

    keys = {key for key, _, _ in reference()}
    assert set(spec.settings) <= keys, f"{spec.id} declares unknown settings {sorted(set(spec.settings) - keys)}"
    for where, state in _states():
        seen: set[str] = set()
        spec.evaluate(state, _Recording(Config(), "", seen))
        assert seen <= set(spec.settings), (
            f"{spec.id} on the {where} read undeclared settings {sorted(seen - set(spec.settings))}"
        )


def test_every_threshold_belongs_to_a_check():
    from ov_exporter.config import reference

    declared = {key for s in CHECKS for key in s.settings}
    thresholds = {key for key, _, _ in reference() if key.startswith("thresholds.")}
    assert thresholds <= declared, f"thresholds no check declares: {sorted(thresholds - declared)}"


@pytest.mark.parametrize("spec", CHECKS, ids=lambda s: s.id)
def test_an_alert_names_its_object_by_a_label_of_the_check_families(spec):
    from ov_exporter.records import KINDS

    kinds = {k.kind for k in KINDS}
    labels = {label for fam in spec.families for label in fam.labels}
    for decl in spec.alerts:
        if decl.names == "Cluster":
            continue
        kind, _, label = decl.names.partition("/")
        assert kind in kinds, f"{decl.name}: names {kind!r}, which is no kind the exporter reads"
        assert label in labels, f"{decl.name}: names its object by label {label!r}, which no family of {spec.id} has"


# ---------------------------------------------------------------- dashboard panels


def _panels_by_check() -> dict[str, set[str]]:
    """check id -> "<uid>/<title>" of every panel whose queries read the check's families."""
    from .test_dashboards import DASHES, _fill

    def walk(panels):
        for panel in panels:
            yield panel
            yield from walk(panel.get("panels", []))

    found: dict[str, set[str]] = {}
    for uid, dash in DASHES.items():
        for panel in walk(dash.get("panels", [])):
            for target in panel.get("targets", []):
                for metric in _reads(_fill(target["expr"])) if target.get("expr") else ():
                    if metric in OWNER:
                        found.setdefault(OWNER[metric], set()).add(f"{uid}/{panel['title']}")
    return found


@pytest.mark.parametrize("spec", CHECKS, ids=lambda s: s.id)
def test_a_check_declares_exactly_the_panels_that_show_its_metrics(spec):
    shown = _panels_by_check().get(spec.id, set())
    declared = set(spec.panels)
    assert declared == shown, (
        f"{spec.id}: panels showing its families but not declared: {sorted(shown - declared)}; "
        f"declared but showing none of them (renamed or gone?): {sorted(declared - shown)}"
    )


@pytest.mark.parametrize("spec", CHECKS, ids=lambda s: s.id)
def test_every_check_is_shown_on_a_dashboard(spec):
    """A Grafana viewer sees every anti-pattern the exporter judges, not only the alerting ones."""
    assert _panels_by_check().get(spec.id), f"{spec.id}: no dashboard panel shows any of its metric families"


# ---------------------------------------------------------------- kinds read


@pytest.mark.parametrize("spec", CHECKS, ids=lambda s: s.id)
def test_a_check_reads_only_the_kinds_it_declares(spec, monkeypatch):
    """The ClusterRole, the reuse of unchanged results and the blind-kind logic all trust
    `requires` and `reads`: run the check (domain helpers included) and record every kind
    it touches."""
    from ov_exporter.config import Config
    from ov_exporter.store import ClusterState

    seen: set[str] = set()
    real_of, real_index = ClusterState.of, ClusterState.index

    def of(self, key):
        seen.add(key)
        return real_of(self, key)

    def index(self, key):
        seen.add(key)
        return real_index(self, key)

    monkeypatch.setattr(ClusterState, "of", of)
    monkeypatch.setattr(ClusterState, "index", index)
    for _, state in _states():
        spec.evaluate(state, Config())
    declared = {*spec.requires, *spec.reads}
    assert seen <= declared, f"{spec.id} reads undeclared kinds {sorted(seen - declared)}"

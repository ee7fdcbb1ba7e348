"""trident_volume_limits: TridentBackendConfigs without volume limits (anti-pattern 2)."""

from __future__ import annotations

import pytest
import yaml
from ov_exporter import runner
from ov_exporter.checks import trident_volume_limits as check
from ov_exporter.model import NotApplicable, ObjectRef, Severity, Status
from ov_exporter.sources.snapshot import SnapshotSource
from ov_exporter.store import Store

from .builders import EXEMPT, GI, config, series, severities, state, trident_backend

SIZE, POOL, AGGR, COUNT = (check.VOLUME_SIZE.name, check.POOL_SIZE.name, check.AGGREGATE.name, check.UNLIMITED.name)
TI = 1024 * GI


def run(*objects):
    return check.evaluate(state(*objects), config())


def test_backend_without_any_limit_is_a_warning_with_zero_gauges():
    out = run(trident_backend("nas"))
    assert series(out, SIZE) == {("trident", "nas", "ontap-nas"): 0}
    assert series(out, AGGR) == {("trident", "nas", "ontap-nas"): 0}
    assert series(out, POOL) == {}  # not an economy driver
    assert series(out, COUNT) == {(): 1}
    [finding] = out.findings
    assert finding.severity is Severity.WARNING
    assert finding.obj == ObjectRef("TridentBackendConfig", "trident", "nas")
    assert "limitVolumeSize" in finding.message and "limitAggregateUsage" in finding.message


def test_fully_limited_backend_is_silent_and_exports_its_limits():
    out = run(trident_backend("san", "ontap-san", limitVolumeSize="2Ti", limitAggregateUsage="80%"))
    assert out.findings == []
    assert series(out, SIZE) == {("trident", "san", "ontap-san"): 2 * TI}
    assert series(out, AGGR) == {("trident", "san", "ontap-san"): pytest.approx(0.8)}
    assert series(out, COUNT) == {(): 0}


@pytest.mark.parametrize("driver, noun", [("ontap-nas-economy", "qtrees"), ("ontap-san-economy", "LUNs")])
def test_economy_backend_without_pool_limit_is_a_warning(driver, noun):
    out = run(trident_backend("eco", driver, limitVolumeSize="100Gi", limitAggregateUsage=85))
    assert series(out, POOL) == {("trident", "eco", driver): 0}
    assert series(out, SIZE) == {("trident", "eco", driver): 100 * GI}
    [finding] = out.findings
    assert finding.severity is Severity.WARNING
    assert "limitVolumePoolSize" in finding.message and noun in finding.message
    assert "limitVolumeSize" not in finding.message.replace("limitVolumePoolSize", "")


def test_economy_backend_with_all_limits_is_silent():
    out = run(
        trident_backend(
            "eco", "ontap-nas-economy", limitVolumeSize="100Gi", limitVolumePoolSize="4TiB", limitAggregateUsage="90%"
        )
    )
    assert out.findings == []
    assert series(out, POOL) == {("trident", "eco", "ontap-nas-economy"): 4 * TI}


def test_missing_aggregate_limit_alone_is_info():
    out = run(trident_backend("san", "ontap-san", limitVolumeSize="1T"))
    assert series(out, SIZE) == {("trident", "san", "ontap-san"): 1e12}
    [finding] = out.findings
    assert finding.severity is Severity.INFO and "limitAggregateUsage" in finding.message


def test_non_ontap_driver_needs_only_a_volume_size_limit():
    out = run(
        trident_backend("anf", "azure-netapp-files", limitVolumeSize="4Ti"), trident_backend("sf", "solidfire-san")
    )
    assert series(out, AGGR) == {}
    assert severities(out) == {"sf": Severity.WARNING}
    assert series(out, COUNT) == {(): 1}


@pytest.mark.parametrize(
    "field, value, severity",
    [
        ("limitVolumeSize", "Gi", Severity.WARNING),
        ("limitVolumeSize", "-5Gi", Severity.WARNING),
        ("limitVolumeSize", "0", Severity.WARNING),
        ("limitAggregateUsage", "180%", Severity.INFO),
        ("limitAggregateUsage", "lots", Severity.INFO),
    ],
)
def test_invalid_limit_counts_as_absent_and_names_the_field(field, value, severity):
    spec = {"limitVolumeSize": "1Ti", "limitAggregateUsage": "80%", field: value}
    out = run(trident_backend("bad", **spec), trident_backend("good", limitVolumeSize="1Ti", limitAggregateUsage="80%"))
    assert severities(out) == {"bad": severity}
    gauge = SIZE if field == "limitVolumeSize" else AGGR
    assert series(out, gauge)[("trident", "bad", "ontap-nas")] == 0
    [finding] = out.findings
    assert field in finding.message and repr(value) in finding.message


def test_limits_under_defaults_or_virtual_pools_do_not_count_and_are_named():
    out = run(
        trident_backend(
            "nas",
            defaults={"limitVolumeSize": "1Ti"},
            storage=[{"labels": {"tier": "gold"}}, {"limitVolumeSize": "500Gi"}],
        )
    )
    assert series(out, SIZE) == {("trident", "nas", "ontap-nas"): 0}
    [finding] = out.findings
    assert finding.severity is Severity.WARNING
    assert "spec.defaults.limitVolumeSize" in finding.message and "spec.storage[1].limitVolumeSize" in finding.message


def test_backend_without_spec_or_driver_is_judged_not_skipped():
    obj = trident_backend("empty")
    obj["spec"] = None
    out = run(obj)
    assert series(out, SIZE) == {("trident", "empty", "unknown"): 0}
    assert [f.severity for f in out.findings] == [Severity.WARNING]


def test_no_backend_configs_is_not_applicable():
    with pytest.raises(NotApplicable, match="TridentBackendConfig"):
        run()
    result = runner.evaluate(state(), config()).result("trident_volume_limits")
    assert result.status is Status.NOT_APPLICABLE


def test_exempt_backend_drops_its_finding_and_series():
    exempt = trident_backend("legacy")
    exempt["metadata"]["annotations"] = {EXEMPT: "trident_volume_limits"}
    evaluation = runner.evaluate(state(exempt, trident_backend("nas")), config())
    result = evaluation.result("trident_volume_limits")
    assert [f.obj.name for f in result.findings] == ["nas"]
    assert all(s.labels[1] != "legacy" for s in result.samples if s.family == SIZE)


def test_one_broken_backend_does_not_hide_the_others(tmp_path):
    broken = trident_backend("broken")
    broken["spec"]["storage"] = "not-a-list"
    text = "\n---\n".join(yaml.safe_dump(o) for o in (broken, trident_backend("nas")))
    (tmp_path / "trident.yaml").write_text(text)
    store = Store()
    SnapshotSource(tmp_path).load(store.apply)
    problems = [str(p) for p in store.problems]
    assert len(problems) == 1
    assert "trident.yaml document 1" in problems[0] and "TridentBackendConfig" in problems[0]
    assert "$.spec.storage" in problems[0] and "kept without" in problems[0]
    # The broken backend is kept without its bad field, so it is still judged.
    result = runner.evaluate(store.state(), config()).result("trident_volume_limits")
    assert sorted(f.obj.name for f in result.findings) == ["broken", "nas"]

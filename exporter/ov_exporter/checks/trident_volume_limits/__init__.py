"""Anti-pattern 2: Trident backends without volume limits can exhaust the storage system."""

from __future__ import annotations

from typing import Any

from ...config import Config
from ...domain.k8s import ref
from ...model import AlertDecl, CheckOutput, CheckSpec, Family, Finding, NotApplicable, Sample, Severity
from ...quantity import parse_quantity
from ...store import ClusterState

KIND_KEY = "tridentbackendconfigs.trident.netapp.io"
ECONOMY_DRIVERS = ("ontap-nas-economy", "ontap-san-economy")
LABELS = ("namespace", "backend", "driver")

VOLUME_SIZE = Family(
    "ov_trident_backend_volume_size_limit_bytes",
    "gauge",
    "spec.limitVolumeSize of a TridentBackendConfig: the largest volume Trident creates on the backend; "
    "0 = unlimited (absent or invalid). One series per backend.",
    LABELS,
    per_object=True,
)
POOL_SIZE = Family(
    "ov_trident_backend_volume_pool_size_limit_bytes",
    "gauge",
    "spec.limitVolumePoolSize of an economy-driver TridentBackendConfig (ontap-nas-economy, ontap-san-economy): "
    "the largest FlexVol Trident grows to hold qtrees or LUNs; 0 = unlimited. One series per economy backend.",
    LABELS,
    per_object=True,
)
AGGREGATE = Family(
    "ov_trident_backend_aggregate_usage_limit_ratio",
    "gauge",
    "spec.limitAggregateUsage of an ONTAP TridentBackendConfig as a ratio (0.8 = provisioning stops at 80 % "
    "aggregate usage); 0 = unlimited. One series per ontap-* backend.",
    LABELS,
    per_object=True,
)
UNLIMITED = Family(
    "ov_trident_backends_without_volume_size_limit",
    "gauge",
    "TridentBackendConfigs without a valid spec.limitVolumeSize.",
    no_alert=(
        "count of the backends ov_trident_backend_volume_size_limit_bytes lists one by one; alerting on both "
        "would notify twice"
    ),
)

LIMIT_FIELDS = ("limitVolumeSize", "limitVolumePoolSize", "limitAggregateUsage")


class LimitInvalid(ValueError):
    pass


def parse_size(value: Any) -> float:
    """Bytes of a Trident size limit: Kubernetes quantities ("100Gi", "500G") and the
    byte-suffixed forms Trident also accepts ("100GiB", "1TB"). 0 or less is no limit."""
    text = value
    if isinstance(value, str) and value.strip().endswith("B") and value.strip()[:-1][-1:].isalpha():
        text = value.strip()[:-1]  # "100GiB" -> "100Gi", "1TB" -> "1T"
    try:
        size = parse_quantity(text)
    except ValueError as exc:
        raise LimitInvalid(f"{value!r} is not a size") from exc
    if size <= 0:
        raise LimitInvalid(f"{value!r} is not a positive size")
    return size


def parse_percent(value: Any) -> float:
    """Ratio of a limitAggregateUsage ("80%" or 80)."""
    text = value.strip().removesuffix("%").strip() if isinstance(value, str) else value
    try:
        if isinstance(text, bool):
            raise ValueError
        percent = float(text)
    except (TypeError, ValueError) as exc:
        raise LimitInvalid(f"{value!r} is not a percentage") from exc
    if not 0 < percent <= 100:
        raise LimitInvalid(f"{value!r} is not a percentage between 0 and 100")
    return percent / 100


def _set(value: Any) -> bool:
    return value is not None and value != ""


def _limit(raw: Any, parse, field: str, missing: str, invalid: str, problems: list[str]) -> float:
    """A limit field's value (0 = none applies); a missing or invalid one adds its message to problems."""
    if not _set(raw):
        problems.append(missing)
        return 0.0
    try:
        return parse(raw)
    except LimitInvalid as exc:
        problems.append(f"spec.{field} {exc}: {invalid}")
        return 0.0


def _misplaced(spec: Any) -> list[str]:
    """Limit fields under spec.defaults or spec.storage[]: Trident reads backend limits from
    the top level of the backend config only, so there they limit nothing."""
    out = []
    places = [("spec.defaults", spec.defaults)] + [(f"spec.storage[{i}]", p) for i, p in enumerate(spec.storage or [])]
    for where, limits in places:
        if limits is None:
            continue
        for attr, name in zip(("limit_volume_size", "limit_volume_pool_size", "limit_aggregate_usage"), LIMIT_FIELDS):
            if _set(getattr(limits, attr)):
                out.append(f"{where}.{name}")
    return out


def evaluate(state: ClusterState, config: Config) -> CheckOutput:
    out = CheckOutput()
    unlimited = 0
    if not state.of(KIND_KEY):
        raise NotApplicable(
            "no TridentBackendConfig objects (Trident absent, or its backends were created "
            "with tridentctl, which this check cannot read)"
        )
    for tbc in sorted(state.of(KIND_KEY), key=lambda t: (t.metadata.namespace, t.metadata.name)):
        obj = ref("TridentBackendConfig", tbc)
        spec = tbc.spec
        driver = (spec.storage_driver_name if spec else "") or "unknown"
        labels = (tbc.metadata.namespace, tbc.metadata.name, driver)
        warnings: list[str] = []
        infos: list[str] = []

        size = _limit(
            spec.limit_volume_size if spec else None,
            parse_size,
            "limitVolumeSize",
            "no spec.limitVolumeSize: a single PVC can request any size",
            "no volume size limit applies",
            warnings,
        )
        if size == 0:
            unlimited += 1
        out.samples.append(Sample(VOLUME_SIZE.name, labels, size, obj))

        if driver in ECONOMY_DRIVERS:
            pool = _limit(
                spec.limit_volume_pool_size if spec else None,
                parse_size,
                "limitVolumePoolSize",
                f"{driver} without spec.limitVolumePoolSize: the FlexVols holding the "
                f"{'qtrees' if 'nas' in driver else 'LUNs'} grow without limit",
                "FlexVols grow without limit",
                warnings,
            )
            out.samples.append(Sample(POOL_SIZE.name, labels, pool, obj))

        if driver.startswith("ontap-"):
            ratio = _limit(
                spec.limit_aggregate_usage if spec else None,
                parse_percent,
                "limitAggregateUsage",
                "no spec.limitAggregateUsage: provisioning continues until the aggregate is full",
                "no aggregate limit applies",
                infos,
            )
            out.samples.append(Sample(AGGREGATE.name, labels, ratio, obj))

        misplaced = _misplaced(spec) if spec else []
        note = f" ({', '.join(misplaced)} set, but Trident reads limits from the top of spec only)" if misplaced else ""
        if warnings:
            out.findings.append(Finding(SPEC.id, Severity.WARNING, obj, "; ".join(warnings + infos) + note))
        elif infos:
            out.findings.append(Finding(SPEC.id, Severity.INFO, obj, "; ".join(infos) + note))
    out.samples.append(Sample(UNLIMITED.name, (), unlimited))
    return out


SPEC = CheckSpec(
    id="trident_volume_limits",
    anti_pattern=2,
    title="Trident backends without volume limits",
    severity_rules="warning: a TridentBackendConfig without a valid spec.limitVolumeSize, or an economy "
    "backend (ontap-nas-economy, ontap-san-economy) without a valid spec.limitVolumePoolSize: "
    "nothing in the cluster stops one claim or FlexVol from "
    "filling the SVM (the SVM's own limits live on ONTAP and cannot be read here); info: an ONTAP "
    "backend whose size limits are set but which has no valid spec.limitAggregateUsage. One finding "
    "per backend, at its worst severity",
    families=(VOLUME_SIZE, POOL_SIZE, AGGREGATE, UNLIMITED),
    remediation="Set spec.limitVolumeSize (e.g. 2Ti, above the largest VM disk) on every TridentBackendConfig, "
    "spec.limitVolumePoolSize on ontap-nas-economy/ontap-san-economy backends, and "
    "spec.limitAggregateUsage where Trident has cluster-admin credentials; on ONTAP also cap the SVM "
    "(vserver modify -max-volumes, -storage-limit).",
    alerts=(
        AlertDecl("OVTridentBackendWithoutVolumeLimit", warning="failure_risk", names="TridentBackendConfig/backend"),
        AlertDecl("OVTridentBackendWithoutAggregateLimit", info="hygiene", names="TridentBackendConfig/backend"),
    ),
    panels=(
        "ov-overview/Trident backends: volume size limit (0 = unlimited)",
        "ov-overview/Trident economy backends: pool size limit (0 = unlimited)",
        "ov-overview/Trident ONTAP backends: aggregate usage limit (0 = none)",
    ),
    evaluate=evaluate,
    requires=(KIND_KEY,),
)

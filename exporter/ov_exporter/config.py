"""Exporter configuration: a YAML file, then command-line flags on top.

An unknown key or a bad value is a ConfigError naming the key (exit code 2).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

import msgspec
import yaml
from msgspec import Meta, Struct, field

from .errors import ConfigError
from .quantity import parse_bitrate

Ratio = Annotated[float, Meta(gt=0, le=1000)]
Fraction = Annotated[float, Meta(gt=0, le=100)]

PROFILE_CPU_TARGET = {"production": 1.2, "dev-test": 1.5}
ASSUMED_THREADS_PER_CORE = 2  # SMT on, as on most x86 servers, when neither NFD nor config says


class _Base(Struct, forbid_unknown_fields=True, rename="kebab", kw_only=True):
    pass


class Thresholds(_Base):
    cpu_overcommit_max: Ratio = 1.8
    cpu_overcommit_target: Ratio | None = None  # None: from the profile
    memory_overcommit_max: Fraction = 0.9
    memory_overcommit_critical: Fraction = 1.0
    dirty_rate_risk_warning: Fraction = 0.5
    dirty_rate_risk_critical: Fraction = 1.0
    scheduling_constraints_max: Annotated[int, Meta(ge=0, le=1000)] = 5
    right_sizing_over_ratio: Annotated[float, Meta(gt=0, lt=1)] = 0.25  # used below this share of requested
    right_sizing_under_memory_ratio: Annotated[float, Meta(gt=0, le=1)] = 0.9  # memory used at or above
    right_sizing_under_cpu_ratio: Annotated[float, Meta(gt=0, le=1)] = 0.9  # CPU used at or above, of vCPUs
    # The migration queue is stalled when its oldest unfinished VMIM is older than this and
    # no migration finished within it.
    migration_queue_stall_minutes: Annotated[int, Meta(ge=1, le=1440)] = 30
    # A VMI waiting in Pending or Scheduling longer than this without the scheduler's
    # Unschedulable verdict is a finding and a warning alert.
    vmi_pending_minutes: Annotated[int, Meta(ge=1, le=1440)] = 15
    # The post-rebalance watch (check rebalance_watch; alerts/post-rebalance.yaml and the
    # post-rebalance dashboard read them from ov_rebalance_watch_threshold_ratio): a VM node's
    # allocation this far above the mean of the VM nodes is "far above" it; a VM node busier
    # than node-cpu-overloaded (node_exporter) or fuller than node-memory-overloaded is
    # overloaded; the CPU spread may exceed its pre-rebalance baseline by spread-margin.
    node_above_mean: Annotated[float, Meta(gt=0, le=1)] = 0.25
    node_cpu_overloaded: Annotated[float, Meta(gt=0, le=1)] = 0.8
    node_memory_overloaded: Annotated[float, Meta(gt=0, le=1)] = 0.85
    spread_margin: Annotated[float, Meta(ge=0, le=1)] = 0.1
    # Rebalance plan: no plan while the spread of node utilisation (busiest - idlest, the
    # worse of CPU and memory) is within this; a move must lower it by the minimum gain, as set
    # on clusters of up to 8 VM nodes, x 8 / nodes above (planner.effective_min_gain).
    rebalance_spread_max: Annotated[float, Meta(ge=0, le=10)] = 0.2
    rebalance_min_gain: Annotated[float, Meta(gt=0, le=1)] = 0.01


class Namespaces(_Base):
    include: list[str] = field(default_factory=list)  # empty: all
    exclude: list[str] = field(default_factory=list)


class RebalanceWindow(_Base):
    """A rebalance the user declares: migrations created inside it open the post-rebalance watch."""

    start: Annotated[datetime, Meta(tz=True)]  # RFC 3339 with an offset, e.g. 2025-01-20T08:00:00Z
    end: Annotated[datetime, Meta(tz=True)]


class CheckToggle(_Base):
    enabled: bool = True
    # Seconds between two runs at most (None: the check's declared min_interval).
    min_interval: Annotated[int, Meta(ge=0, le=86_400)] | None = None


class Config(_Base):
    profile: Literal["production", "dev-test"] = "production"
    thresholds: Thresholds = field(default_factory=Thresholds)
    namespaces: Namespaces = field(default_factory=Namespaces)
    exemption_annotation: str = "ov-exporter.openshift.io/exempt"
    checks: dict[str, CheckToggle] = field(default_factory=dict)
    series_cap: Annotated[int, Meta(ge=0, le=1_000_000)] = 500
    # None: not known for nodes without the NFD label; checks assume ASSUMED_THREADS_PER_CORE.
    threads_per_core: Annotated[int, Meta(ge=1, le=8)] | None = None
    migration_link_speed: str | int = "10G"  # bits per second: "10G", "25Gbit/s", 10000000000
    rebalance_watch_window: Annotated[int, Meta(ge=24, le=48)] = 48  # hours after the last migration
    rebalance_windows: list[RebalanceWindow] = field(default_factory=list)
    # Node label naming the hypervisor host (ESXi host, ...) a control-plane node runs on;
    # "" reads no label. No standard label exists: set it (or point this at one you maintain).
    control_plane_host_label: str = "ov-exporter.openshift.io/hypervisor-host"

    @property
    def cpu_target(self) -> float:
        return self.thresholds.cpu_overcommit_target or PROFILE_CPU_TARGET[self.profile]

    @property
    def migration_link_bytes_per_second(self) -> float:
        return parse_bitrate(self.migration_link_speed) / 8

    def check_enabled(self, check_id: str) -> bool:
        toggle = self.checks.get(check_id)
        return toggle is None or toggle.enabled

    def min_interval(self, check_id: str, declared: float) -> float:
        toggle = self.checks.get(check_id)
        return declared if toggle is None or toggle.min_interval is None else float(toggle.min_interval)

    def namespace_selected(self, namespace: str) -> bool:
        if not namespace:
            return True
        if self.namespaces.include and namespace not in self.namespaces.include:
            return False
        return namespace not in self.namespaces.exclude


def _validate(cfg: Config, known_checks: set[str] | None, origin: str) -> Config:
    try:
        _ = cfg.migration_link_bytes_per_second  # parses migration-link-speed
    except ValueError as exc:
        raise ConfigError(f"{origin}: migration-link-speed: {exc}") from exc
    if (
        cfg.thresholds.cpu_overcommit_target
        and cfg.thresholds.cpu_overcommit_target > cfg.thresholds.cpu_overcommit_max
    ):
        raise ConfigError(f"{origin}: thresholds.cpu-overcommit-target must not exceed thresholds.cpu-overcommit-max")
    t = cfg.thresholds
    if t.right_sizing_over_ratio >= min(t.right_sizing_under_cpu_ratio, t.right_sizing_under_memory_ratio):
        raise ConfigError(
            f"{origin}: thresholds.right-sizing-over-ratio must be below "
            "thresholds.right-sizing-under-cpu-ratio and right-sizing-under-memory-ratio"
        )
    for i, window in enumerate(cfg.rebalance_windows):
        if window.end <= window.start:
            raise ConfigError(
                f"{origin}: rebalance-windows[{i}]: end {window.end.isoformat()} must be after "
                f"start {window.start.isoformat()}"
            )
    if known_checks is not None:
        unknown = sorted(set(cfg.checks) - known_checks)
        if unknown:
            raise ConfigError(
                f"{origin}: checks: unknown check id {unknown[0]!r} (known: {', '.join(sorted(known_checks))})"
            )
    return cfg


def _msgspec_error(origin: str, exc: msgspec.ValidationError) -> ConfigError:
    # msgspec: "Object contains unknown field `foo` - at `$.thresholds`"
    text = str(exc).replace("`$.", "`").replace("`$`", "top level")
    return ConfigError(f"{origin}: {text}")


def load_config(path: Path | str | None, known_checks: set[str] | None = None, overrides: dict | None = None) -> Config:
    """Read the YAML file (if any), apply flag overrides (kebab-case keys), validate."""
    origin = str(path) if path else "configuration"
    raw: dict = {}
    if path:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"{origin}: cannot read: {exc.strerror or exc}") from exc
        try:
            raw = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{origin}: invalid YAML: {' '.join(str(exc).split())}") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"{origin}: expected a mapping at the top level, got {type(raw).__name__}")
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        target = raw
        *parents, leaf = key.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    try:
        cfg = msgspec.convert(raw, Config)
    except msgspec.ValidationError as exc:
        raise _msgspec_error(origin, exc) from exc
    return _validate(cfg, known_checks, origin)


def default_config() -> Config:
    return Config()


def reference() -> list[tuple[str, str, str]]:
    """(key, default, type) rows for the README's configuration reference."""
    rows: list[tuple[str, str, str]] = []

    def walk(struct_type, prefix: str) -> None:
        info = msgspec.inspect.type_info(struct_type)
        for f in info.fields:
            key = prefix + f.encode_name
            if isinstance(f.type, msgspec.inspect.StructType):
                walk(f.type.cls, key + ".")
                continue
            default = (
                f.default
                if f.default is not msgspec.NODEFAULT
                else (f.default_factory() if f.default_factory is not msgspec.NODEFAULT else "")
            )
            rows.append(
                (key, "" if default is None else str(default), type(f.type).__name__.replace("Type", "").lower())
            )

    walk(Config, "")
    return rows

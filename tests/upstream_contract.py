"""The upstream metrics contract (alerts/upstream-metrics.yaml) as a small library.

    releases()                     supported KubeVirt releases, oldest first
    exists(metric, release)        is the name published by that release of its component
    labels(metric, release)        the metric's own labels in that release
    target_labels(component)       labels the OpenShift scrape adds to the component's series
    check_series(metric, labels)   raise ContractError when a series invents or misses a label

A metric may be named by a histogram series (<base>_bucket/_sum/_count); lookups resolve
it to the base name. Versions compare numerically; a two-part version ("1.7") in `last`
covers every patch of that line. The contract's schema is documented at its top."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import yaml

CONTRACT = Path(__file__).resolve().parent.parent / "alerts" / "upstream-metrics.yaml"
TYPES = {"counter", "gauge", "histogram", "untyped", "recording rule"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


class ContractError(ValueError):
    pass


def version(text: str, open_end: bool = False) -> tuple[float, ...]:
    """'1.4.1' -> (1, 4, 1); '1.7' -> (1, 7, 0), or (1, 7, inf) as the end of a range."""
    try:
        parts = [float(int(p)) for p in str(text).split(".")]
    except ValueError:
        raise ContractError(f"{text!r} is not a version (digits and dots)") from None
    while len(parts) < 3:
        parts.append(math.inf if open_end else 0.0)
    return tuple(parts)


def _validate(doc: dict) -> dict:
    if not isinstance(doc, dict) or set(doc) != {"components", "metrics", "needs_release"}:
        raise ContractError(f"{CONTRACT.name}: top-level keys must be components, metrics, needs_release")
    for cid, comp in doc["components"].items():
        for key in ("repository", "releases", "scrape", "target_labels"):
            if key not in comp:
                raise ContractError(f"{CONTRACT.name}: component {cid}: missing {key}")
    for name, entry in doc["metrics"].items():
        where = f"{CONTRACT.name}: metric {name}"
        comp = entry.get("component")
        if comp not in doc["components"]:
            raise ContractError(f"{where}: component {comp!r} is not a key of components")
        if entry.get("type") not in TYPES:
            raise ContractError(f"{where}: type {entry.get('type')!r} not one of {sorted(TYPES)}")
        for key in ("labels", "first", "last", "source"):
            if key not in entry:
                raise ContractError(f"{where}: missing {key}")
        src = entry["source"]
        if not (isinstance(src, dict) and src.get("repository") and src.get("path") and "tags" in src):
            raise ContractError(f"{where}: source must name repository, path and tags")
        labels = entry["labels"]
        sets = labels.values() if isinstance(labels, dict) else [labels]
        for keys in sets:
            if not isinstance(keys, list) or len(set(keys)) != len(keys):
                raise ContractError(f"{where}: labels must be lists of distinct names")
        if isinstance(labels, dict):
            for v in labels:
                version(v)
        for key in ("first", "last"):
            if entry[key] is not None:
                version(entry[key])
        if entry["type"] == "recording rule" and "target_labels" not in entry:
            raise ContractError(f"{where}: a recording rule says which target labels it keeps (target_labels)")
        for v in entry.get("absent_in", []):
            version(v)
    for rule, need in (doc["needs_release"] or {}).items():
        if not (isinstance(need, dict) and need.get("release") and need.get("reason")):
            raise ContractError(f"{CONTRACT.name}: needs_release {rule}: give release and reason")
        version(need["release"])
    return doc


@functools.lru_cache(maxsize=1)
def load() -> dict:
    return _validate(yaml.safe_load(CONTRACT.read_text()))


def metrics() -> dict[str, dict]:
    return load()["metrics"]


def series_names() -> set[str]:
    """Every series name the contract covers: its names plus each histogram's
    _bucket, _sum and _count."""
    names = set(metrics())
    for name, e in metrics().items():
        if e["type"] == "histogram":
            names |= {name + suffix for suffix in HISTOGRAM_SUFFIXES}
    return names


def base_name(metric: str) -> str | None:
    """The contract name a series name belongs to, or None when it is not upstream."""
    table = metrics()
    if metric in table:
        return metric
    for suffix in HISTOGRAM_SUFFIXES:
        base = metric[: -len(suffix)]
        if metric.endswith(suffix) and table.get(base, {}).get("type") == "histogram":
            return base
    return None


def entry(metric: str) -> dict:
    base = base_name(metric)
    if base is None:
        raise ContractError(f"{metric} is not in {CONTRACT.name}")
    return metrics()[base]


def releases(component: str = "kubevirt") -> list[str]:
    return [str(r) for r in load()["components"][component]["releases"]]


def exists(metric: str, release: str) -> bool:
    """Whether `metric` exists under that name in `release` of its component."""
    e = entry(metric)
    v = version(release)
    if e["first"] is not None and v < version(e["first"]):
        return False
    if e["last"] is not None and v > version(e["last"], open_end=True):
        return False
    return all(v != version(a) for a in e.get("absent_in", []))


def labels(metric: str, release: str | None = None) -> set[str]:
    """Own labels of `metric` in `release` (default: the newest label set), plus `le`
    for a histogram's _bucket series."""
    e = entry(metric)
    spec = e["labels"]
    if isinstance(spec, dict):
        keys = sorted(spec, key=version)
        chosen = keys[-1]
        if release is not None:
            v = version(release)
            earlier = [k for k in keys if version(k) <= v]
            chosen = earlier[-1] if earlier else keys[0]
        own = set(spec[chosen])
    else:
        own = set(spec)
    if e["type"] == "histogram" and metric.endswith("_bucket"):
        own.add("le")
    return own


def label_prefixes(metric: str) -> tuple[str, ...]:
    return tuple(entry(metric).get("label_prefixes", []))


def target_labels(component: str) -> set[str]:
    return set(load()["components"][component]["target_labels"])


# Labels every series may carry in a fleet: each cluster's Prometheus sets `cluster` in
# global.external_labels, and Thanos Querier, ACM observability or federation keep it.
FLEET_LABELS = frozenset({"cluster"})


def series_target_labels(metric: str) -> set[str]:
    """Target labels a series of `metric` may carry: its component's, or for a recording
    rule only those its expression keeps; plus FLEET_LABELS."""
    e = entry(metric)
    kept = e.get("target_labels", "all")
    comp = target_labels(e["component"])
    return (comp if kept == "all" else set(kept)) | FLEET_LABELS


def all_labels(metric: str, release: str | None = None) -> set[str]:
    """Own labels plus the target labels a series of `metric` can carry."""
    return labels(metric, release) | series_target_labels(metric)


def check_series(metric: str, series_labels: dict[str, str] | set[str], release: str | None = None) -> None:
    """Raise ContractError when a series of `metric` misses one of its own labels or
    carries a label that is neither its own, a target label nor a dynamic one."""
    if release is not None and not exists(metric, release):
        raise ContractError(f"{metric} does not exist in {entry(metric)['component']} {release}")
    given = set(series_labels) - {"__name__"}
    own = labels(metric, release)
    missing = own - given
    invented = {k for k in given - own - series_target_labels(metric) if not k.startswith(label_prefixes(metric))}
    if missing or invented:
        problems = []
        if missing:
            problems.append(f"misses {sorted(missing)}")
        if invented:
            problems.append(f"invents {sorted(invented)}")
        at = f" in {release}" if release else ""
        raise ContractError(
            f"series {metric}{{{', '.join(sorted(given))}}} {' and '.join(problems)}: "
            f"the contract{at} has own labels {sorted(own)} and target labels "
            f"{sorted(series_target_labels(metric))}"
        )

"""Prometheus samples from an instant-query answer (`/api/v1/query`), shared by the
snapshot loader (saved answers) and the live Prometheus client."""

from __future__ import annotations

from typing import Any

from .. import rebalance, upstream
from ..events import Samples, UpstreamSample

# One query for every series the checks read, under all their historical names.
WANTED_QUERY = '{__name__=~"%s"}' % "|".join(sorted(upstream.WANTED))
# Queries whose answers carry no metric name (aggregations): the name they are kept under.
DERIVED_QUERIES = {
    upstream.VMI_CPU_USAGE_RATE: f"sum by (namespace, name) (rate({upstream.VMI_CPU_USAGE}[5m]))",
    # The recording rule of KubeVirt 1.3-1.9, its 1.9 replacement, else the formula both record
    # from the virt-handler gauges (so it resolves without KubeVirt's PrometheusRule too).
    upstream.VMI_MEMORY_USED: (
        f"max by (namespace, name) ({upstream.VMI_MEMORY_USED} or {upstream.VMI_MEMORY_USED_SUM}"
        f" or ({upstream.VMI_MEMORY_AVAILABLE} - {upstream.VMI_MEMORY_USABLE}))"
    ),
    # What the rebalance planner's usage basis reads: each VM's host memory, and each node's CPU
    # and memory utilisation by the rebalance report's own expressions (instance -> node).
    upstream.VMI_MEMORY_RESIDENT: f"max by (namespace, name) ({upstream.VMI_MEMORY_RESIDENT})",
    upstream.NODE_CPU_UTILISATION: rebalance.cpu_utilisation(window=upstream.NODE_USAGE_WINDOW),
    upstream.NODE_MEMORY_UTILISATION: rebalance.memory_utilisation(window=upstream.NODE_USAGE_WINDOW),
}


def parse_query_data(data: Any, samples: Samples, name: str | None = None) -> list[str]:
    """Add the wanted series of a query's `data` (vector or matrix) to samples;
    return one message per malformed series (the others are kept). `name` keeps the
    answer of a DERIVED_QUERIES entry, whose series have no metric name."""
    if not isinstance(data, dict) or not isinstance(data.get("result"), list):
        return ["no `data.result` list in the Prometheus answer"]
    errors: list[str] = []
    for i, series in enumerate(data["result"]):
        try:
            metric = {str(k): str(v) for k, v in series["metric"].items()}
            series_name = metric.pop("__name__", "") or name or ""
            series_name = upstream.ALIASES.get(series_name, series_name)
            points = [series["value"]] if "value" in series else series["values"][-1:]
            for ts, value in points:
                if series_name in upstream.WANTED or series_name == name:
                    samples.setdefault(series_name, []).append(UpstreamSample(metric, float(value), float(ts)))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            errors.append(f"data.result[{i}]: malformed series: {exc!r}")
    return errors

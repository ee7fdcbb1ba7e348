"""Prometheus samples from an instant-query answer (`/api/v1/query`), shared by the
snapshot loader (saved answers) and the live Prometheus client."""
from __future__ import annotations

from typing import Any

from .. import upstream
from ..store import MetricSample, Samples

# One query for every series the checks read, under all their historical names.
WANTED_QUERY = '{__name__=~"%s"}' % "|".join(sorted(upstream.WANTED))


def parse_query_data(data: Any, samples: Samples) -> list[str]:
    """Add the wanted series of a query's `data` (vector or matrix) to samples;
    return one message per malformed series (the others are kept)."""
    if not isinstance(data, dict) or not isinstance(data.get("result"), list):
        return ["no `data.result` list in the Prometheus answer"]
    errors: list[str] = []
    for i, series in enumerate(data["result"]):
        try:
            metric = {str(k): str(v) for k, v in series["metric"].items()}
            name = metric.pop("__name__", "")
            points = [series["value"]] if "value" in series else series["values"][-1:]
            for ts, value in points:
                if name in upstream.WANTED:
                    samples.setdefault(name, []).append(MetricSample(metric, float(value), float(ts)))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            errors.append(f"data.result[{i}]: malformed series: {exc!r}")
    return errors

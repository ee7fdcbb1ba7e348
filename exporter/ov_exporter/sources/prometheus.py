"""Prometheus (or the OpenShift Thanos querier) as the source of dirty-rate and usage samples.

One instant query for every series the checks read, under all their historical names,
plus one per derived series (the VMIs' CPU rate), on its own interval, with a bounded
timeout. A failure fails only the checks that use samples (`migration_dirty_rate`);
the rest of the exporter carries on.
"""

from __future__ import annotations

import asyncio
import logging

from ..events import Emit, Samples, SamplesUpdated
from ..promclient import PrometheusClient, PrometheusError
from .promql import DERIVED_QUERIES, WANTED_QUERY, parse_query_data

log = logging.getLogger(__name__)


class PrometheusSamples:
    def __init__(
        self,
        url: str,
        token_file: str | None = None,
        ca_file: str | None = None,
        interval: float = 60.0,
        timeout: float = 10.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.token_file, self.ca_file = token_file, ca_file
        self.interval, self.timeout = interval, timeout
        self.first_attempt = asyncio.Event()  # set once the first query succeeded or failed

    def describe(self) -> str:
        return f"Prometheus {self.url}"

    def client(self) -> PrometheusClient:
        return PrometheusClient(self.url, self.token_file, self.ca_file, self.timeout)

    async def query(self, client: PrometheusClient) -> Samples:
        """One round: the selector of every wanted series, then each derived query."""
        samples: Samples = {}
        for name, query in ((None, WANTED_QUERY), *DERIVED_QUERIES.items()):
            data = await client.data(query)
            for problem in parse_query_data(data, samples, name):
                log.warning("%s: %s", self.describe(), problem)
        return samples

    async def run(self, emit: Emit) -> None:
        async with self.client() as client:
            while True:
                try:
                    samples = await self.query(client)
                    emit(SamplesUpdated(samples, self.describe()))
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - only the dependent check degrades
                    message = (
                        str(exc)
                        if isinstance(exc, PrometheusError)
                        else f"{self.describe()} unreachable: {type(exc).__name__}: {exc}"
                    )
                    log.warning("%s", message)
                    emit(SamplesUpdated(None, self.describe(), error=message))
                self.first_attempt.set()
                await asyncio.sleep(self.interval)

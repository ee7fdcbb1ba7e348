"""Prometheus (or the OpenShift Thanos querier) as the source of dirty-rate and usage samples.

One instant query for every series the checks read, under all their historical names,
plus one per derived series (the VMIs' CPU rate), on its own interval, with a bounded
timeout. A failure fails only the checks that use samples (`migration_dirty_rate`);
the rest of the exporter carries on.
"""
from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path

import aiohttp

from ..events import Emit, Samples, SamplesUpdated
from .promql import DERIVED_QUERIES, WANTED_QUERY, parse_query_data

log = logging.getLogger(__name__)


class PrometheusSamples:
    def __init__(self, url: str, token_file: str | None = None, ca_file: str | None = None,
                 interval: float = 60.0, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.token_file, self.ca_file = token_file, ca_file
        self.interval, self.timeout = interval, timeout
        self.first_attempt = asyncio.Event()  # set once the first query succeeded or failed

    def describe(self) -> str:
        return f"Prometheus {self.url}"

    def _headers(self) -> dict[str, str]:
        if not self.token_file:
            return {}
        token = Path(self.token_file).read_text().strip()  # re-read: projected tokens rotate
        return {"Authorization": f"Bearer {token}"}

    def _ssl(self) -> ssl.SSLContext | None:
        return ssl.create_default_context(cafile=self.ca_file) if self.ca_file else None

    async def _instant(self, session: aiohttp.ClientSession, query: str, headers: dict[str, str]) -> object:
        async with session.get(f"{self.url}/api/v1/query", params={"query": query}, headers=headers,
                               timeout=aiohttp.ClientTimeout(total=self.timeout)) as resp:
            body = await resp.json(content_type=None)
            if resp.status != 200 or not isinstance(body, dict) or body.get("status") != "success":
                error = body.get("error") if isinstance(body, dict) else None
                raise RuntimeError(f"HTTP {resp.status}: {error or 'unexpected answer'} (query {query})")
        return body.get("data")

    async def query(self, session: aiohttp.ClientSession) -> Samples:
        headers = await asyncio.to_thread(self._headers)
        samples: Samples = {}
        for name, query in ((None, WANTED_QUERY), *DERIVED_QUERIES.items()):
            data = await self._instant(session, query, headers)
            for problem in parse_query_data(data, samples, name):
                log.warning("%s: %s", self.describe(), problem)
        return samples

    async def run(self, emit: Emit) -> None:
        connector = aiohttp.TCPConnector(ssl=self._ssl() or True)
        async with aiohttp.ClientSession(connector=connector) as session:
            while True:
                try:
                    samples = await self.query(session)
                    emit(SamplesUpdated(samples, self.describe()))
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - only the dependent check degrades
                    message = f"{self.describe()} unreachable: {type(exc).__name__}: {exc}"
                    log.warning("%s", message)
                    emit(SamplesUpdated(None, self.describe(), error=message))
                self.first_attempt.set()
                await asyncio.sleep(self.interval)

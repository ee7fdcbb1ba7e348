"""Instant queries against Prometheus or the Thanos querier, shared by the exporter's
metric source (sources/prometheus.py) and `rebalance-report` (rebalance.py).

A bearer token file is read again for every query (projected service-account tokens
rotate); a CA file pins the server's certificate authority. Every failure is a
PrometheusError naming the server and the query.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from pathlib import Path
from typing import Any

import aiohttp

from .errors import OvError


class PrometheusError(OvError):
    pass


def _ts(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


class PrometheusClient:
    """`async with PrometheusClient(url, ...) as client: await client.vector(expr)`."""

    def __init__(
        self, url: str, token_file: str | None = None, ca_file: str | None = None, timeout: float = 30.0
    ) -> None:
        self.url = url.rstrip("/")
        self.token_file, self.ca_file, self.timeout = token_file, ca_file, timeout
        self._session: aiohttp.ClientSession | None = None

    def describe(self) -> str:
        return f"Prometheus {self.url}"

    def _headers(self) -> dict[str, str]:
        if not self.token_file:
            return {}
        try:
            token = Path(self.token_file).read_text().strip()
        except OSError as exc:
            raise PrometheusError(f"--prometheus-token-file {self.token_file}: {exc.strerror or exc}") from exc
        return {"Authorization": f"Bearer {token}"}

    def _ssl(self) -> ssl.SSLContext | bool:
        if not self.ca_file:
            return True
        try:
            return ssl.create_default_context(cafile=self.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise PrometheusError(f"--prometheus-ca-file {self.ca_file}: {exc}") from exc

    async def __aenter__(self) -> PrometheusClient:
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self._ssl()))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def data(self, expr: str, at: float | None = None) -> dict[str, Any]:
        """The `data` of an instant query (at `at`, default the server's now)."""
        assert self._session is not None, "use PrometheusClient as an async context manager"
        headers = await asyncio.to_thread(self._headers)
        endpoint = f"{self.url}/api/v1/query"
        params = {"query": expr} if at is None else {"query": expr, "time": _ts(at)}
        try:
            async with self._session.get(
                endpoint, params=params, headers=headers, timeout=aiohttp.ClientTimeout(total=self.timeout)
            ) as resp:
                text, status = await resp.text(), resp.status
        except asyncio.TimeoutError as exc:
            raise PrometheusError(
                f"{self.describe()} did not answer within {self.timeout:g}s (query {expr!r})"
            ) from exc
        except aiohttp.ClientError as exc:
            raise PrometheusError(f"{self.describe()} unreachable: {type(exc).__name__}: {exc}") from exc
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if status != 200 or not isinstance(body, dict) or body.get("status") != "success":
            error = body.get("error") if isinstance(body, dict) else text[:200]
            raise PrometheusError(
                f"Prometheus {endpoint}: HTTP {status}: {error or 'unexpected answer'} (query {expr!r})"
            )
        return body.get("data") or {}

    async def vector(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """The result of an instant query that must be a vector."""
        data = await self.data(expr, at)
        if data.get("resultType") != "vector" or not isinstance(data.get("result"), list):
            raise PrometheusError(
                f"Prometheus {self.url}/api/v1/query: expected a vector, got "
                f"{data.get('resultType')!r} (query {expr!r})"
            )
        return data["result"]

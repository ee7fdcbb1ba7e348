"""HTTP to the Kubernetes API server: requests counted by verb and code, API errors
decoded from their Status, client-go's backoff, and one line for any failure."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import aiohttp
import msgspec

from ..errors import SourceError
from .credentials import Credentials

# client-go's reflector backoff: 800 ms doubling to 30 s, jitter 1.0 (so at most 60 s,
# which bounds recovery after a permission is granted or a token fixed).
BACKOFF_INITIAL, BACKOFF_MAX = 0.8, 30.0
WATCH_SECONDS = (300, 600)  # server-side watch timeout, randomised like client-go


class ApiError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}" if message else f"{status} {reason}")
        self.status, self.reason, self.message = status, reason, message


class _Status(msgspec.Struct):
    code: int = 0
    reason: str = ""
    message: str = ""


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply to decode"
    return str(exc) or type(exc).__name__


def _api_error(status: int, body: bytes) -> ApiError:
    try:
        st = msgspec.json.decode(body, type=_Status)
        return ApiError(status, st.reason or aiohttp.http.RESPONSES.get(status, ("",))[0], st.message)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return ApiError(status, aiohttp.http.RESPONSES.get(status, ("",))[0], body[:200].decode(errors="replace"))


def describe_error(exc: BaseException) -> str:
    """One line for the log, /readyz and the CLI."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return f"TLS verification of {exc.host}:{exc.port} failed: {exc.certificate_error}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to the API server {exc.host}:{exc.port}: {exc.os_error.strerror or exc.os_error}"
    if isinstance(exc, ApiError) and exc.status == 401:
        return f"the API server rejected the credentials (401 {exc.reason})"
    if isinstance(exc, asyncio.TimeoutError):
        return "the API server did not answer in time"
    if isinstance(exc, (ApiError, SourceError)):
        return str(exc)
    return f"{type(exc).__name__}: {_error_text(exc)}"


class ApiClient:
    """aiohttp against the API server, counting requests by verb and code. A 401 makes
    the credentials read their token again; when that gives a new token, the request is
    sent once more before the 401 is reported."""

    def __init__(self, credentials: Credentials, request_timeout: float = 60.0) -> None:
        self.credentials = credentials
        self.requests: Counter[tuple[str, str]] = Counter()
        self._timeout = request_timeout
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> "ApiClient":
        connector = aiohttp.TCPConnector(ssl=self.credentials.ssl, limit=64)
        self._session = aiohttp.ClientSession(
            self.credentials.host,
            connector=connector,
            headers={"Accept": "application/json", "User-Agent": "ov-exporter"},
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def _open(
        self, path: str, params: dict[str, str], verb: str, timeout: aiohttp.ClientTimeout
    ) -> aiohttp.ClientResponse:
        """A response with status 200; raises ApiError for any other."""
        assert self._session is not None
        for attempt in (1, 2):
            headers = await self.credentials.headers()
            resp = await self._session.get(path, params=params, headers=headers, timeout=timeout)
            self.requests[(verb, str(resp.status))] += 1
            if resp.status == 200:
                return resp
            body = await resp.read()
            resp.release()
            if resp.status == 401 and attempt == 1:
                self.credentials.invalidate()
                if await self.credentials.headers() != headers:
                    continue  # the token rotated: try the new one
            raise _api_error(resp.status, body)
        raise AssertionError("unreachable")

    async def get(self, path: str, params: dict[str, str], verb: str = "get") -> bytes:
        resp = await self._open(path, params, verb, aiohttp.ClientTimeout(total=self._timeout))
        try:
            return await resp.read()
        finally:
            resp.release()

    async def watch(self, path: str, params: dict[str, str]) -> aiohttp.ClientResponse:
        """Opens a watch stream; the caller reads and closes it."""
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._timeout, sock_read=WATCH_SECONDS[1] + 60)
        return await self._open(path, params, "watch", timeout)


class Backoff:
    """client-go's reflector backoff: BACKOFF_INITIAL doubling up to BACKOFF_MAX, plus
    up to 100 % jitter; `reset()` after a healthy period starts it over."""

    def __init__(self) -> None:
        self.failures = 0

    def next(self) -> float:
        delay = min(BACKOFF_MAX, BACKOFF_INITIAL * 2 ** min(self.failures, 32))
        self.failures += 1
        return delay * (1 + random.random())

    def reset(self) -> None:
        self.failures = 0

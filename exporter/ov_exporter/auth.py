"""`serve --auth kubernetes`: bearer tokens checked by the cluster, as
controller-runtime's secured metrics endpoint does (pkg/metrics/filters).

A request's token goes to a TokenReview (authentication.k8s.io/v1); the user it names
goes to a SubjectAccessReview (authorization.k8s.io/v1) for `get` on the non-resource
URL `/metrics`, one check for every route that shows cluster data. Both are created
with the exporter's own API credentials (the live source's; its ServiceAccount needs
the ClusterRole `system:auth-delegator`). Answers are cached by the token's SHA-256:
allowed ones for `cache_seconds`, refusals for `DENIAL_SECONDS`. 401 and 403 only
follow a definite answer; when the API server cannot answer the request gets 503.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from .errors import SourceError
from .sources.credentials import Credentials

log = logging.getLogger(__name__)

RESULTS = ("allowed", "denied", "unauthenticated", "error")
# Routes (as registered, so decided after routing) that show no cluster data.
OPEN_ROUTES = frozenset({"/healthz", "/readyz", "/runbooks/{name}"})
REVIEWED_PATH, REVIEWED_VERB = "/metrics", "get"
DENIAL_SECONDS = 10.0
MAX_ENTRIES = 1024
REQUEST_TIMEOUT = 10.0
TOKEN_REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"
ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/subjectaccessreviews"


class ReviewError(Exception):
    """The API server gave no definite answer (unreachable, error, refused our own
    credentials): the request gets 503."""


@dataclass(frozen=True)
class Decision:
    result: str  # one of RESULTS except "error"
    reason: str = ""


def bearer_token(header: str) -> str | None:
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


class KubernetesAuth:
    """TokenReview + SubjectAccessReview with a small cache; `middleware` guards every
    route except /healthz, /readyz and /runbooks/*."""

    def __init__(
        self,
        credentials: Credentials,
        cache_seconds: float = 60.0,
        denial_seconds: float = DENIAL_SECONDS,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self.credentials = credentials
        self.cache_seconds, self.denial_seconds, self.max_entries = cache_seconds, denial_seconds, max_entries
        self.counts: Counter[str] = Counter({r: 0 for r in RESULTS})
        self._cache: OrderedDict[str, tuple[float, Decision]] = OrderedDict()
        self._pending: dict[str, asyncio.Task[Decision]] = {}
        self._session: aiohttp.ClientSession | None = None

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(ssl=self.credentials.ssl, limit=8)
        self._session = aiohttp.ClientSession(
            self.credentials.host,
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
            headers={"Accept": "application/json", "User-Agent": "ov-exporter"},
        )

    async def close(self) -> None:
        for task in list(self._pending.values()):
            task.cancel()
        if self._session is not None:
            await self._session.close()
            self._session = None

    # ------------------------------------------------------------ API calls

    async def _create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POSTs a review; a 401 makes the credentials read their token again once."""
        if self._session is None:
            await self.start()
        assert self._session is not None
        kind = body["kind"]
        for attempt in (1, 2):
            try:
                headers = await self.credentials.headers()
                async with self._session.post(path, json=body, headers=headers) as resp:
                    text = await resp.text()
            except SourceError as exc:
                raise ReviewError(f"{kind}: {exc}") from exc
            except aiohttp.ServerDisconnectedError as exc:
                if attempt == 1:
                    continue  # a kept-alive connection the server had closed; reviews are safe to repeat
                raise ReviewError(f"{kind}: the API server {self.credentials.host} closed the connection") from exc
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                raise ReviewError(
                    f"{kind}: cannot reach the API server {self.credentials.host}: {str(exc) or type(exc).__name__}"
                ) from exc
            if resp.status in (200, 201):
                try:
                    answer = json.loads(text)
                except ValueError:
                    answer = None
                if not isinstance(answer, dict) or not isinstance(answer.get("status", {}), dict):
                    raise ReviewError(f"{kind}: the API server's answer is not a {kind}: {text[:200]}")
                return answer
            text = text[:300]
            if resp.status == 401 and attempt == 1:
                self.credentials.invalidate()
                try:
                    if await self.credentials.headers() != headers:
                        continue  # our token rotated: try the new one
                except SourceError as exc:
                    raise ReviewError(f"{kind}: {exc}") from exc
            hint = ""
            if resp.status == 403:
                hint = " (the exporter's ServiceAccount needs the ClusterRole system:auth-delegator)"
            raise ReviewError(f"{kind}: the API server answered {resp.status}{hint}: {text}")
        raise AssertionError("unreachable")

    async def review(self, token: str) -> Decision:
        """TokenReview, then SubjectAccessReview for the user it names. Raises ReviewError."""
        tr = await self._create(
            TOKEN_REVIEWS, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
        )
        status = tr.get("status") or {}
        if status.get("authenticated") is not True:
            return Decision("unauthenticated", str(status.get("error") or "token not authenticated"))
        user = status.get("user") or {}
        spec: dict[str, Any] = {
            "user": user.get("username", ""),
            "groups": user.get("groups") or [],
            "nonResourceAttributes": {"path": REVIEWED_PATH, "verb": REVIEWED_VERB},
        }
        if user.get("uid"):
            spec["uid"] = user["uid"]
        if user.get("extra"):
            spec["extra"] = user["extra"]
        sar = await self._create(
            ACCESS_REVIEWS, {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}
        )
        verdict = sar.get("status") or {}
        who = user.get("username", "?")
        if verdict.get("allowed") is True and verdict.get("denied") is not True:
            return Decision("allowed", who)
        if verdict.get("evaluationError") and not verdict.get("reason"):
            log.warning("SubjectAccessReview for %s: evaluation error: %s", who, verdict["evaluationError"])
        reason = verdict.get("reason") or "no RBAC rule allows it"
        log.warning("refused %s: may not %s the non-resource URL %s (%s)", who, REVIEWED_VERB, REVIEWED_PATH, reason)
        return Decision("denied", f"{who} may not {REVIEWED_VERB} {REVIEWED_PATH}: {reason}")

    # ------------------------------------------------------------ cache

    async def decide(self, token: str) -> Decision:
        """Cached decision for a token. Concurrent requests with one token share one review,
        which runs as its own task: a caller that goes away does not cancel it for the others."""
        key = hashlib.sha256(token.encode()).hexdigest()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        task = self._pending.get(key)
        if task is None:
            task = asyncio.create_task(self._review_and_cache(key, token))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())  # retrieved even when nobody waits
            self._pending[key] = task
        return await asyncio.shield(task)

    async def _review_and_cache(self, key: str, token: str) -> Decision:
        try:
            decision = await self.review(token)
        finally:
            del self._pending[key]
        ttl = self.cache_seconds if decision.result == "allowed" else self.denial_seconds
        self._cache[key] = (time.monotonic() + ttl, decision)
        self._cache.move_to_end(key)
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)
        return decision

    # ------------------------------------------------------------ HTTP

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        resource = request.match_info.route.resource
        if resource is not None and resource.canonical in OPEN_ROUTES:
            return await handler(request)
        token = bearer_token(request.headers.get("Authorization", ""))
        if token is None:
            self.counts["unauthenticated"] += 1
            return _refuse(401, "Unauthorized: send Authorization: Bearer <token>\n")
        try:
            decision = await self.decide(token)
        except ReviewError as exc:
            self.counts["error"] += 1
            log.error("cannot authorise a request for %s: %s", request.path, exc)
            return web.Response(status=503, text=f"cannot check the bearer token now: {exc}\n")
        self.counts[decision.result] += 1
        if decision.result == "unauthenticated":
            return _refuse(401, "Unauthorized: the bearer token was not authenticated\n")
        if decision.result == "denied":
            return web.Response(status=403, text=f"Forbidden: {decision.reason}\n")
        return await handler(request)


def _refuse(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text, headers={"WWW-Authenticate": 'Bearer realm="ov-exporter"'})

"""API discovery: which version of each kind the API server serves, or that its group
is not installed."""

from __future__ import annotations

import logging

import msgspec

from ..records import KINDS
from .apiclient import ApiClient, ApiError

log = logging.getLogger(__name__)


class _Group(msgspec.Struct):
    name: str
    versions: list[dict] = []
    preferredVersion: dict | None = None


class _GroupList(msgspec.Struct):
    groups: list[_Group] = []


async def discover(client: ApiClient) -> dict[str, str]:
    """kind key -> version to use, or "" when the API group is not installed. A 401 or
    a connection error is raised; other failures assume the preferred versions."""
    try:
        groups = msgspec.json.decode(await client.get("/apis", {}, verb="discovery"), type=_GroupList).groups
    except ApiError as exc:
        if exc.status == 401:
            raise
        log.warning("API discovery failed (%s); assuming preferred versions", exc)
        return {k.key: k.versions[0] for k in KINDS}
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        log.warning("API discovery failed (%s); assuming preferred versions", exc)
        return {k.key: k.versions[0] for k in KINDS}
    served = {g.name: [v.get("version", "") for v in g.versions] for g in groups}
    result: dict[str, str] = {}
    for kind in KINDS:
        if not kind.group:
            result[kind.key] = kind.versions[0]
        elif kind.group in served:
            result[kind.key] = next((v for v in kind.versions if v in served[kind.group]), served[kind.group][0])
        else:
            result[kind.key] = ""
    return result

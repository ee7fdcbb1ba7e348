"""Credentials for the live source: what the `kubernetes` package's loaders resolve
(kubeconfig with token, token file, client certificate or exec plugin; in-cluster
service account), plus token files that rotate.

A token file (kubeconfig `tokenFile`, the in-cluster projected service-account token)
is re-read whenever it changes on disk and after every 401, as client-go's cached file
token source does, so a rotated token is used without a restart.

Only the loaders are imported (`kubernetes.config` and `kubernetes.client.Configuration`),
not the package's `__init__` (the API client, dynamic client, watch, stream, utils...),
which would cost the process about 12 MiB more; see `_loaders`.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import logging
import os
import ssl
import sys
import threading
import time
import types
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..errors import SourceError

log = logging.getLogger(__name__)


@dataclass
class Credentials:
    """What the `kubernetes` loaders resolved: server, TLS, and a token source."""

    host: str
    ssl: ssl.SSLContext | bool
    configuration: Any  # kubernetes.client.Configuration, whose refresh hook re-reads tokens
    description: str
    token_file: str | None = None  # re-read on change and after a 401
    max_age: float = 10.0  # seconds a token from the loader is reused before asking it again

    def __post_init__(self) -> None:
        self._cached: dict[str, str] | None = None
        self._cached_at = 0.0
        self._file_stamp: tuple[int, int, int] | None = None
        self._lock: asyncio.Lock | None = None

    def _token_blocking(self) -> str | None:
        if self.token_file is not None:
            try:
                with open(self.token_file, encoding="utf-8") as fh:
                    return fh.read().strip() or None
            except OSError as exc:
                raise SourceError(f"cannot read token file {self.token_file}: {exc.strerror or exc}") from exc
        cfg = self.configuration
        return cfg.get_api_key_with_prefix("BearerToken") or cfg.get_api_key_with_prefix("authorization")

    def _file_changed(self) -> bool:
        if self.token_file is None:
            return False
        try:
            st = os.stat(self.token_file)
        except OSError:
            return True  # gone: reading it reports the error
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp != self._file_stamp:
            self._file_stamp = stamp
            return True
        return False

    def invalidate(self) -> None:
        """After a 401: the next request reads the token again."""
        self._cached = None

    def _fresh(self) -> bool:
        if self._cached is None or self._file_changed():
            return False
        return self.token_file is not None or time.monotonic() - self._cached_at < self.max_age

    async def headers(self) -> dict[str, str]:
        """Authorization header. The loader's refresh hook may run an exec plugin (a
        process), so reading runs in a worker thread, one call at a time. Raises
        SourceError when the token file cannot be read."""
        if self._fresh():
            assert self._cached is not None
            return self._cached
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if not self._fresh():
                token = await asyncio.to_thread(self._token_blocking)
                if token and token.lower().startswith("bearer "):
                    token = token[7:]
                self._cached = {"Authorization": f"Bearer {token}"} if token else {}
                self._cached_at = time.monotonic()
            assert self._cached is not None
            return self._cached


class _Loaders(NamedTuple):
    configuration: type  # kubernetes.client.Configuration
    kube_config: types.ModuleType  # kubernetes.config.kube_config
    incluster_config: types.ModuleType  # kubernetes.config.incluster_config
    config_exception: type[Exception]  # kubernetes.config.ConfigException


_LIGHT: _Loaders | None = None
_LIGHT_LOCK = threading.Lock()


def _real_loaders() -> _Loaders:
    from kubernetes.client import Configuration
    from kubernetes.config import incluster_config, kube_config
    from kubernetes.config.config_exception import ConfigException

    return _Loaders(Configuration, kube_config, incluster_config, ConfigException)


def _api_client(*args: Any, **kwargs: Any) -> Any:
    """`kubernetes.client.ApiClient`, imported (with the whole package) when a loader
    calls it: only the OIDC auth provider's token refresh does."""
    from kubernetes.client import ApiClient

    return ApiClient(*args, **kwargs)


def _oauth2_session(*args: Any, **kwargs: Any) -> Any:
    """`requests_oauthlib.OAuth2Session` (with `requests`), imported when the OIDC auth
    provider refreshes its token."""
    from requests_oauthlib import OAuth2Session

    return OAuth2Session(*args, **kwargs)


def _light_loaders() -> _Loaders:
    """The loaders' own modules without the package around them. Importing
    `kubernetes.config` runs `kubernetes/__init__.py`, which imports the API client
    (pydantic), the dynamic client, watch, stream and utils (jsonschema); the loaders use
    only `kubernetes.client.Configuration`, and `ApiClient` and `requests_oauthlib` to
    refresh OIDC tokens. So the packages above them and `requests_oauthlib` are stand-ins
    while they are imported (a package with the real directory, `Configuration` from its
    own module, the rest imported on first call), and every name added to `sys.modules`
    under them is taken out again afterwards: a later `import kubernetes` anywhere in the
    process gets the whole package, as if this had not run."""
    spec = importlib.util.find_spec("kubernetes")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the kubernetes package is not installed")
    before = set(sys.modules)
    root = types.ModuleType("kubernetes")
    root.__path__ = list(spec.submodule_search_locations)
    client = types.ModuleType("kubernetes.client")
    client.__path__ = [os.path.join(p, "client") for p in root.__path__]
    oauth = types.ModuleType("requests_oauthlib")
    oauth.OAuth2Session = _oauth2_session  # type: ignore[attr-defined]
    stand_ins = {"kubernetes": root, "kubernetes.client": client}
    if "requests_oauthlib" not in sys.modules:
        stand_ins["requests_oauthlib"] = oauth
    sys.modules.update(stand_ins)
    try:
        client.Configuration = importlib.import_module("kubernetes.client.configuration").Configuration  # type: ignore[attr-defined]
        client.ApiClient = _api_client  # type: ignore[attr-defined]
        return _Loaders(
            client.Configuration,  # type: ignore[attr-defined]
            importlib.import_module("kubernetes.config.kube_config"),
            importlib.import_module("kubernetes.config.incluster_config"),
            importlib.import_module("kubernetes.config.config_exception").ConfigException,
        )
    finally:
        for name in set(sys.modules) - before:
            if name in stand_ins or name.startswith("kubernetes."):
                del sys.modules[name]


def _loaders() -> _Loaders:
    """The package's own modules when something in the process imported it (tests patch
    them), else the light ones, imported once. Should a release of the package import
    something at module level that the stand-ins lack, the whole package is imported
    instead: it costs memory, never the credentials."""
    global _LIGHT
    if "kubernetes" in sys.modules:
        return _real_loaders()
    with _LIGHT_LOCK:
        if _LIGHT is None:
            try:
                _LIGHT = _light_loaders()
            except Exception as exc:  # noqa: BLE001 - any failure: the package's own import
                log.debug("importing the kubernetes loaders alone failed (%s); importing the package", exc)
                return _real_loaders()
        return _LIGHT


def _kubeconfig_token_file(kube_config: types.ModuleType, path: str, context: str | None) -> str | None:
    """The selected user's `tokenFile`, unless a `token` overrides it (as in client-go)."""
    try:
        loader = kube_config._get_kube_config_loader(filename=path, active_context=context)
        user = loader._user
        if user is None or "token" in user or "tokenFile" not in user:
            return None
        token_file = user["tokenFile"]
        base = os.path.dirname(os.path.abspath(user.path)) if getattr(user, "path", None) else ""
        return os.path.join(base, token_file) if base else token_file
    except Exception:  # noqa: BLE001 - the loader already accepted the file; no token file then
        return None


def load_credentials(kubeconfig: str | None = None, context: str | None = None) -> Credentials:
    """Blocking. Kubeconfig (explicit, $KUBECONFIG, ~/.kube/config), else in-cluster.
    Raises SourceError when there are none or they cannot be read."""
    loaders = _loaders()
    cfg = loaders.configuration()
    path = kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    first = path.split(os.pathsep)[0]
    token_file = None
    try:
        if kubeconfig or os.environ.get("KUBECONFIG") or os.path.exists(first):
            loaders.kube_config.load_kube_config(
                config_file=path, context=context, client_configuration=cfg, persist_config=False
            )
            description = f"kubeconfig {path}" + (f" context {context}" if context else "")
            token_file = _kubeconfig_token_file(loaders.kube_config, path, context)
        elif os.environ.get("KUBERNETES_SERVICE_HOST"):
            loaders.incluster_config.load_incluster_config(client_configuration=cfg)
            description = "in-cluster service account"
            token_file = loaders.incluster_config.SERVICE_TOKEN_FILENAME
        else:
            raise SourceError(
                "no Kubernetes credentials found: no kubeconfig (--kubeconfig, $KUBECONFIG, "
                "~/.kube/config) and not running in a cluster; use --demo for the embedded demo "
                "cluster or --snapshot DIR for a saved one"
            )
    except loaders.config_exception as exc:
        raise SourceError(
            f"cannot load Kubernetes credentials from {path}: {exc}; "
            "use --demo or --snapshot DIR to run without a cluster"
        ) from exc
    except SourceError:
        raise
    except Exception as exc:  # noqa: BLE001 - a malformed kubeconfig raises anything from YAML to KeyError
        raise SourceError(f"cannot load Kubernetes credentials from {path}: {type(exc).__name__}: {exc}") from exc
    try:
        tls = _ssl_context(cfg)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise SourceError(f"cannot load the TLS files named in {description}: {exc}") from exc
    return Credentials(cfg.host.rstrip("/"), tls, cfg, description, token_file)


def _ssl_context(cfg: Any) -> ssl.SSLContext | bool:
    if not cfg.host.startswith("https"):
        return False
    if not cfg.verify_ssl:
        return False
    ctx = ssl.create_default_context(cafile=cfg.ssl_ca_cert) if cfg.ssl_ca_cert else ssl.create_default_context()
    if cfg.cert_file:
        ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
    return ctx

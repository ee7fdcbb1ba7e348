"""Credentials as users have them: exec plugins and in-cluster service-account tokens
that rotate. The `kubernetes` package's loaders resolve them; the exporter must ask
them again so that a rotated token is used without a restart."""

from __future__ import annotations

import asyncio
import datetime
import ssl
import subprocess
import sys

import yaml
from aiohttp import web
from ov_exporter.sources.live import LiveSource, load_credentials
from ov_exporter.store import Store

from .conftest import require_binary
from .fakeapi.server import FakeAPIServer
from .test_live import cluster, eventually

EXEC_PLUGIN = """
import datetime, json, sys
token = open(sys.argv[1]).read().strip()
expiry = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
print(json.dumps({"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential",
                  "status": {"token": token, "expirationTimestamp": expiry}}))
"""


async def _run_until_synced(source: LiveSource, store: Store) -> asyncio.Task:
    task = asyncio.create_task(source.run(store.apply))
    await eventually(lambda: store.synced, "first sync", timeout=20)
    return task


async def test_exec_plugin_credentials_refresh(tmp_path):
    api = FakeAPIServer(token="exec-1", bookmark_interval=0.2)
    for obj in cluster():
        api.add(obj)
    await api.start()
    (tmp_path / "plugin.py").write_text(EXEC_PLUGIN)
    (tmp_path / "token").write_text("exec-1")
    kubeconfig = api.kubeconfig(context="exec")
    kubeconfig["users"][0]["user"] = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": sys.executable,
            "args": [str(tmp_path / "plugin.py"), str(tmp_path / "token")],
            "interactiveMode": "Never",
        }
    }
    (tmp_path / "kc").write_text(yaml.safe_dump(kubeconfig))
    store = Store()
    source = LiveSource(credentials=load_credentials(str(tmp_path / "kc"), "exec"))
    task = await _run_until_synced(source, store)
    try:
        # Rotate: the server only accepts the new token; the plugin hands it out once the old one expires.
        (tmp_path / "token").write_text("exec-2")
        api.set_token("exec-2")
        await asyncio.sleep(1.5)
        api.drop_watches("virtualmachines")  # reconnect: needs the new token
        api.add(
            {
                "apiVersion": "kubevirt.io/v1",
                "kind": "VirtualMachine",
                "metadata": {"name": "after-rotation", "namespace": "team-0"},
            }
        )
        await eventually(
            lambda: any(v.metadata.name == "after-rotation" for v in store.state().vms),
            "watch resumed with the rotated token",
            timeout=20,
        )
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await api.stop()


def _self_signed(tmp_path) -> tuple[str, str]:
    openssl = require_binary("openssl")
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)


class _TLSProxy:
    """TLS in front of the fake API server, as the in-cluster service is HTTPS."""

    def __init__(self, upstream: str, cert: str, key: str) -> None:
        self.upstream, self.cert, self.key = upstream, cert, key

    async def start(self) -> int:
        import aiohttp

        self.session = aiohttp.ClientSession()

        async def forward(request: web.Request) -> web.StreamResponse:
            async with self.session.request(
                request.method,
                self.upstream + request.rel_url.path_qs,
                headers={k: v for k, v in request.headers.items() if k != "Host"},
                data=await request.read(),
                timeout=aiohttp.ClientTimeout(total=None),
            ) as up:
                resp = web.StreamResponse(
                    status=up.status, headers={"Content-Type": up.headers.get("Content-Type", "application/json")}
                )
                await resp.prepare(request)
                async for chunk in up.content.iter_any():
                    await resp.write(chunk)
                await resp.write_eof()
                return resp

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", forward)
        self.runner = web.AppRunner(app, shutdown_timeout=1)
        await self.runner.setup()
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert, self.key)
        site = web.TCPSite(self.runner, "127.0.0.1", 0, ssl_context=ctx)
        await site.start()
        return site._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        await self.runner.cleanup()
        await self.session.close()


async def test_in_cluster_service_account_token_is_reread(tmp_path, monkeypatch):
    from kubernetes.config import incluster_config

    api = FakeAPIServer(token="sa-1", bookmark_interval=0.2)
    for obj in cluster():
        api.add(obj)
    await api.start()
    cert, key = _self_signed(tmp_path)
    proxy = _TLSProxy(api.url, cert, key)
    port = await proxy.start()
    token = tmp_path / "token"
    token.write_text("sa-1")
    # The pod's environment and projected files, as kubelet lays them out.
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(port))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", cert)
    creds = load_credentials(None, None)
    assert creds.description == "in-cluster service account" and creds.host == f"https://127.0.0.1:{port}"
    store = Store()
    task = await _run_until_synced(LiveSource(credentials=creds), store)
    try:
        token.write_text("sa-2")  # kubelet rotates the projected token
        api.set_token("sa-2")
        # The loader re-reads the file once its refresh period (1 minute) has passed;
        # rather than wait a minute, age the loader's copy of the token.
        loader_hook = creds.configuration.refresh_api_key_hook
        assert loader_hook is not None
        for cell in loader_hook.__closure__ or ():
            if isinstance(cell.cell_contents, incluster_config.InClusterConfigLoader):
                cell.cell_contents.token_expires_at = datetime.datetime.now()  # as if a minute went by
        api.drop_watches("virtualmachines")
        api.add(
            {
                "apiVersion": "kubevirt.io/v1",
                "kind": "VirtualMachine",
                "metadata": {"name": "after-rotation", "namespace": "team-0"},
            }
        )
        await eventually(
            lambda: any(v.metadata.name == "after-rotation" for v in store.state().vms),
            "watch resumed with the re-read token",
            timeout=20,
        )
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await proxy.stop()
        await api.stop()

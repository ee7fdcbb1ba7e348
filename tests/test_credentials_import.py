"""Credential loading imports the `kubernetes` package's loaders, not the package: no API
client (pydantic), no `requests`, and a later `import kubernetes` still gets all of it.
Each case runs in a fresh interpreter, since the pytest process may have imported the
package already (then the loaders are simply its own)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import textwrap

import yaml

from .test_live_auth import _self_signed

EXEC_PLUGIN = """
import datetime, json, sys
token = open(sys.argv[1]).read().strip()
expiry = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
print(json.dumps({"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential",
                  "status": {"token": token, "expirationTimestamp": expiry}}))
"""


def _kubeconfig(path, user: dict, cluster: dict | None = None) -> str:
    cluster = cluster or {"insecure-skip-tls-verify": True}
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443", **cluster}}],
                "users": [{"name": "u", "user": user}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    return str(path)


def _run(script: str) -> dict:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


HEAVY = ("kubernetes", "kubernetes.client.api_client", "pydantic", "requests", "requests_oauthlib", "jsonschema")


def test_token_kubeconfig_loads_without_the_package_and_the_package_still_imports(tmp_path):
    kubeconfig = _kubeconfig(tmp_path / "kc", {"token": "s3cret"})
    result = _run(
        f"""
        import json, sys
        from ov_exporter.sources.credentials import _loaders, load_credentials
        creds = load_credentials({kubeconfig!r}, None)
        loaded = [m for m in {HEAVY!r} if m in sys.modules]
        token = creds._token_blocking()
        kube_config = _loaders().kube_config
        # The stand-ins the OIDC refresh calls hand out the package's own objects.
        api_client = type(kube_config.ApiClient(configuration=creds.configuration)).__name__
        session = type(kube_config.OAuth2Session(client_id="x")).__name__
        import kubernetes
        print(json.dumps({{"loaded": loaded, "host": creds.host, "token": token, "verify": creds.ssl,
                          "api_client": api_client, "session": session,
                          "core": hasattr(kubernetes.client, "CoreV1Api"),
                          "real_api_client": kubernetes.config.kube_config.ApiClient.__name__}}))
        """
    )
    assert result == {
        "loaded": [],
        "host": "https://127.0.0.1:6443",
        "token": "Bearer s3cret",
        "verify": False,
        "api_client": "ApiClient",
        "session": "OAuth2Session",
        "core": True,
        "real_api_client": "ApiClient",
    }


def test_exec_plugin_token_refreshes_through_the_loaders(tmp_path):
    (tmp_path / "plugin.py").write_text(EXEC_PLUGIN)
    token = tmp_path / "token"
    token.write_text("exec-1")
    kubeconfig = _kubeconfig(
        tmp_path / "kc",
        {
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1beta1",
                "command": sys.executable,
                "args": [str(tmp_path / "plugin.py"), str(token)],
                "interactiveMode": "Never",
            }
        },
    )
    result = _run(
        f"""
        import json, pathlib, sys, time
        from ov_exporter.sources.credentials import load_credentials
        creds = load_credentials({kubeconfig!r}, None)
        first = creds._token_blocking()
        pathlib.Path({str(token)!r}).write_text("exec-2")
        time.sleep(1.5)  # the plugin's token expired: the loader runs it again
        second = creds._token_blocking()
        print(json.dumps({{"tokens": [first, second], "loaded": [m for m in {HEAVY!r} if m in sys.modules]}}))
        """
    )
    assert result == {"tokens": ["Bearer exec-1", "Bearer exec-2"], "loaded": []}


def test_inline_client_certificate_and_ca_make_the_tls_context(tmp_path):
    cert, key = _self_signed(tmp_path)

    def data(path: str) -> str:
        return base64.b64encode(open(path, "rb").read()).decode()

    kubeconfig = _kubeconfig(
        tmp_path / "kc",
        {"client-certificate-data": data(cert), "client-key-data": data(key)},
        {"certificate-authority-data": data(cert)},
    )
    result = _run(
        f"""
        import json, sys
        from ov_exporter.sources.credentials import load_credentials
        creds = load_credentials({kubeconfig!r}, None)
        cfg = creds.configuration
        print(json.dumps({{"tls": type(creds.ssl).__name__,
                          "cert": open(cfg.cert_file).read() == open({cert!r}).read(),
                          "key": open(cfg.key_file).read() == open({key!r}).read(),
                          "loaded": [m for m in {HEAVY!r} if m in sys.modules]}}))
        """
    )
    assert result == {"tls": "SSLContext", "cert": True, "key": True, "loaded": []}


def test_a_package_the_stand_ins_cannot_load_falls_back_to_the_whole_package(tmp_path):
    kubeconfig = _kubeconfig(tmp_path / "kc", {"token": "s3cret"})
    result = _run(
        f"""
        import json, sys
        from ov_exporter.sources import credentials

        def broken():  # as if a release imported something at module level the stand-ins lack
            raise ImportError("cannot import name 'something_new' from 'kubernetes.client'")

        credentials._light_loaders = broken
        creds = credentials.load_credentials({kubeconfig!r}, None)
        print(json.dumps({{"token": creds._token_blocking(), "package": "kubernetes" in sys.modules}}))
        """
    )
    assert result == {"token": "Bearer s3cret", "package": True}

"""The in-cluster deployment agrees with the code: every overlay of deploy/ renders,
the ClusterRole grants exactly what records.KINDS reads, ports, probes and the TLS
and auth flags line up with the server and the Dockerfile, the example config loads,
and every check has a runbook. (Layout specifics: tests/test_overlays.py.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from ov_exporter import checks
from ov_exporter.config import load_config
from ov_exporter.records import KINDS
from ov_exporter.render import all_families, exposition_name

from .conftest import ROOT
from .overlays import OVERLAYS, arg, exporter_container, of_kind, one, rendered

PACKAGE = ROOT / "exporter" / "ov_exporter"
READ_VERBS = {"get", "list", "watch"}
COMMON_KINDS = {
    "Namespace": 1,
    "ServiceAccount": 2,
    "ClusterRole": 2,
    "ClusterRoleBinding": 3,
    "Role": 1,
    "RoleBinding": 1,
    "Secret": 1,
    "Deployment": 1,
    "Service": 1,
    "NetworkPolicy": 1,
    "ServiceMonitor": 1,
    "PrometheusRule": 1,
}
EXPECTED_KINDS = {
    "kubernetes": {**COMMON_KINDS, "ConfigMap": 1, "Certificate": 1, "Issuer": 1},
    # The service CA's bundle is a second ConfigMap; the AlertingRule holds the platform alerts.
    "openshift-user-workload": {**COMMON_KINDS, "ConfigMap": 2, "AlertingRule": 1},
}
SECTIONS = ["Meaning", "Impact", "Diagnosis", "Mitigation"]
overlays = pytest.mark.parametrize("overlay", OVERLAYS)


# ---------------------------------------------------------------- rendering


@overlays
def test_kustomize_renders_the_expected_kinds(overlay):
    kinds: dict[str, int] = {}
    for doc in rendered(overlay):
        kinds[doc["kind"]] = kinds.get(doc["kind"], 0) + 1
    assert kinds == EXPECTED_KINDS[overlay]


@overlays
def test_namespaced_objects_share_the_namespace_and_the_bindings_name_it(overlay):
    docs = rendered(overlay)
    namespace = one(docs, "Namespace")["metadata"]["name"]
    assert namespace == "ov-exporter"
    for doc in docs:
        if doc["kind"] == "AlertingRule":
            assert doc["metadata"]["namespace"] == "openshift-monitoring"
        elif doc["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding"):
            assert doc["metadata"].get("namespace") == namespace, doc["kind"]
    roles = {r["metadata"]["name"] for r in of_kind(docs, "ClusterRole")} | {"system:auth-delegator"}
    accounts = {a["metadata"]["name"] for a in of_kind(docs, "ServiceAccount")}
    for binding in of_kind(docs, "ClusterRoleBinding"):
        assert binding["roleRef"]["kind"] == "ClusterRole" and binding["roleRef"]["name"] in roles
        [subject] = binding["subjects"]
        assert subject == {"kind": "ServiceAccount", "name": subject["name"], "namespace": namespace}
        assert subject["name"] in accounts
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "ov-exporter"
    exporter_roles = {
        b["roleRef"]["name"] for b in of_kind(docs, "ClusterRoleBinding") if b["subjects"][0]["name"] == "ov-exporter"
    }
    assert exporter_roles == {"ov-exporter", "system:auth-delegator"}


# ---------------------------------------------------------------- RBAC


@overlays
def test_clusterrole_grants_read_on_exactly_the_kinds_read(overlay):
    rules = one(rendered(overlay), "ClusterRole", "ov-exporter")["rules"]
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in rules:
        assert set(rule) <= {"apiGroups", "resources", "verbs"}, f"unexpected rule fields: {rule}"
        verbs = set(rule["verbs"])
        assert verbs <= READ_VERBS, f"verbs other than get/list/watch: {sorted(verbs - READ_VERBS)}"
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                assert "*" not in (group, resource) and "/" not in resource, rule
                assert resource != "secrets", "the exporter never reads Secrets"
                granted.setdefault((group, resource), set()).update(verbs)
    wanted = {(k.group, k.plural) for k in KINDS}
    no_watch = {(k.group, k.plural) for k in KINDS if not k.watchable}  # polled with LIST (metrics API)
    for key in sorted(wanted):
        needed = READ_VERBS - {"watch"} if key in no_watch else READ_VERBS
        assert granted.get(key, set()) >= needed, f"missing {'/'.join(sorted(needed))} on {key}"
        if key in no_watch:
            assert "watch" not in granted[key], f"{key} has no watch: grant get/list only"
    assert set(granted) == wanted, f"grants beyond records.KINDS: {sorted(set(granted) - wanted)}"


# ---------------------------------------------------------------- ports, probes, TLS, scraping


@overlays
def test_port_probes_tls_and_servicemonitor_agree(overlay):
    docs = rendered(overlay)
    container = exporter_container(docs)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": 9871}
    assert container["args"][:3] == ["serve", "--listen", "0.0.0.0:9871"]
    assert int(arg(container, "--listen").rpartition(":")[2]) == ports["metrics"]
    assert arg(container, "--auth") == "kubernetes"
    ready, live = container["readinessProbe"]["httpGet"], container["livenessProbe"]["httpGet"]
    assert ready["path"] == "/readyz" and live["path"] == "/healthz"
    for probe in (ready, live):
        assert probe["port"] in ("metrics", ports["metrics"]) and probe["scheme"] == "HTTPS"

    # --tls-cert-file / --tls-key-file are the tls.crt / tls.key of the mounted Secret.
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    for flag, key in (("--tls-cert-file", "tls.crt"), ("--tls-key-file", "tls.key")):
        path = Path(arg(container, flag))
        [mount] = [m for m in container["volumeMounts"] if Path(m["mountPath"]) == path.parent]
        [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
        assert volume["secret"]["secretName"] == "ov-exporter-tls" and path.name == key

    service = one(docs, "Service")
    [svc_port] = service["spec"]["ports"]
    assert svc_port["name"] == "metrics" and svc_port["targetPort"] in ("metrics", ports["metrics"])
    pod_labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()

    monitor = one(docs, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] == svc_port["name"]
    assert endpoint.get("path", "/metrics") == "/metrics"
    assert endpoint["interval"] == "60s" and endpoint["scheme"] == "https"
    # OpenShift user-workload monitoring rejects these: reference a Secret/ConfigMap instead.
    assert "bearerTokenFile" not in endpoint
    assert "caFile" not in endpoint.get("tlsConfig", {})


@overlays
def test_container_is_locked_down(overlay):
    docs = rendered(overlay)
    container = exporter_container(docs)
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    ctx = container["securityContext"]
    assert ctx["runAsNonRoot"] is True or pod["securityContext"]["runAsNonRoot"] is True
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"]["drop"] == ["ALL"] and not ctx["capabilities"].get("add")
    assert (ctx.get("seccompProfile") or pod["securityContext"]["seccompProfile"])["type"] == "RuntimeDefault"
    assert "runAsUser" not in ctx and "runAsUser" not in pod.get("securityContext", {}), (
        "leave the UID to OpenShift's restricted-v2 SCC"
    )
    resources = container["resources"]
    assert resources["limits"]["memory"] == "512Mi"
    assert resources["requests"]["memory"] and resources["requests"]["cpu"]
    assert container["image"].startswith("ov-exporter:")


# ---------------------------------------------------------------- configuration


def test_example_config_is_mounted_passed_and_loads(tmp_path):
    docs = rendered("kubernetes")
    configmap = one(docs, "ConfigMap", "ov-exporter-config")
    container = exporter_container(docs)
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    args = container["args"]
    config_path = args[args.index("--config") + 1]
    assert config_path == "/etc/ov-exporter/config.yaml"
    [mount] = [m for m in container["volumeMounts"] if config_path.startswith(m["mountPath"].rstrip("/") + "/")]
    [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    key = config_path[len(mount["mountPath"].rstrip("/")) + 1 :]
    assert key in configmap["data"]
    for item in volume["configMap"].get("items", []):
        if item["path"] == key:
            key = item["key"]

    path = tmp_path / "config.yaml"
    path.write_text(configmap["data"][key])
    config = load_config(path, known_checks=set(checks.CHECK_IDS))
    assert set(config.checks) == set(checks.CHECK_IDS), "the example lists every check"
    assert all(config.check_enabled(c) for c in checks.CHECK_IDS)


# ---------------------------------------------------------------- runbooks


def _prose_and_fences(text: str) -> tuple[list[str], list[tuple[str, list[str]]]]:
    prose, fences, current = [], [], None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            if current is None:
                current = (stripped[3:], [])
            else:
                fences.append(current)
                current = None
            continue
        if current is None:
            prose.append(line)
        else:
            current[1].append(line)
    assert current is None, "unclosed code fence"
    return prose, fences


@pytest.mark.parametrize("spec", checks.CHECKS, ids=lambda s: s.id)
def test_every_check_has_a_runbook_in_kubevirt_style(spec):
    assert spec.runbook == f"runbooks/{spec.id}.md"  # the URL path the exporter serves it at
    path = PACKAGE / "checks" / spec.id / "runbook.md"
    assert path.is_file(), f"missing runbook {path.relative_to(ROOT)}"
    text = path.read_text()
    prose, fences = _prose_and_fences(text)

    lines = [line for line in prose if line.strip()]
    assert lines[0] == f"# {spec.title}", "H1 is the check title"
    assert f"`{spec.id}`" in lines[1], "the check id follows the title"
    assert [line for line in prose if line.startswith("# ")] == [lines[0]]
    headings = [line[3:].strip() for line in prose if line.startswith("## ")]
    assert headings == SECTIONS
    assert not [line for line in prose if line.startswith("###")]

    for fam in spec.families:
        name = exposition_name(fam)
        assert re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", text), f"{spec.id}: {name} not mentioned"
        assert fam.name in text

    known = {n for _, f in all_families() for n in (f.name, exposition_name(f))}
    mentioned = set(re.findall(r"\bov_[a-z0-9_]+", text))
    assert mentioned <= known, f"unknown ov_* metrics: {sorted(mentioned - known)}"

    sections = re.split(r"^## ", text, flags=re.M)
    diagnosis = next(s for s in sections if s.startswith("Diagnosis"))
    mitigation = next(s for s in sections if s.startswith("Mitigation"))
    for body in (diagnosis, mitigation):
        assert re.search(r"^1\. ", body, re.M), "numbered steps"
    assert "```bash" in diagnosis and "<" in diagnosis, "bash steps with <placeholders>"
    assert "```promql" in diagnosis, "PromQL on the exporter's metrics"

    for lang, body in fences:
        assert lang in ("bash", "promql", "yaml"), f"fence language {lang!r}"
        if lang == "bash":
            assert body and body[0].strip().startswith("$ "), "bash blocks show commands as `$ ...`"
    too_long = [line for line in prose if len(line) > 80 and not line.startswith("|")]
    assert not too_long, f"prose over 80 columns: {too_long}"
    assert not re.search(r"\bwill\b", "\n".join(prose)), "present tense"


# ---------------------------------------------------------------- image


def test_dockerfile_runs_non_root_and_exposes_the_deployment_port():
    docs = rendered("kubernetes")
    text = (ROOT / "Dockerfile").read_text()
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    stages = [i for i, line in enumerate(lines) if line.upper().startswith("FROM ")]
    assert len(stages) >= 2, "multi-stage build"
    final = lines[stages[-1] :]
    users = [line.split(None, 1)[1] for line in final if line.upper().startswith("USER ")]
    assert users, "the final stage sets USER"
    match = re.fullmatch(r"(\d+)(?::(\d+))?", users[-1])
    assert match, f"USER {users[-1]} is not numeric (runAsNonRoot needs a numeric UID)"
    assert int(match.group(1)) != 0
    assert match.group(2) in (None, "0"), "group 0, as OpenShift's arbitrary UIDs get"
    exposed = {int(p) for line in final if line.upper().startswith("EXPOSE ") for p in line.split()[1:]}
    assert exposed == {exporter_container(docs)["ports"][0]["containerPort"]}
    assert 'ENTRYPOINT ["ov-exporter"]' in final
    assert 'CMD ["serve", "--listen", "0.0.0.0:9871"]' in final


def test_wheel_ships_the_runbooks():
    """The server reads runbooks as package data: the package-data pattern covers them."""
    import tomllib

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["ov_exporter"]
    for spec in checks.CHECKS:
        path = Path("checks", spec.id, "runbook.md")
        assert any(path.match(p) for p in patterns), f"{path} is not package data"


def test_the_built_wheel_and_image_context_carry_every_alert_runbook(tmp_path):
    """The exporter serves /runbooks/<AlertName>.md (the alert rules' default runbook_url)
    from package data that links to alerts/runbooks: a real wheel build must hold them
    all, and the image build must copy them into its context."""
    import subprocess
    import sys
    import zipfile

    link = ROOT / "exporter" / "ov_exporter" / "alert_runbooks"
    assert link.is_symlink() and link.resolve() == (ROOT / "alerts" / "runbooks").resolve()
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    [wheel] = tmp_path.glob("ov_exporter-*.whl")
    shipped = {Path(n).name for n in zipfile.ZipFile(wheel).namelist() if "/alert_runbooks/" in n}
    assert shipped == {p.name for p in (ROOT / "alerts" / "runbooks").glob("*.md")}
    assert "COPY alerts/runbooks ./alerts/runbooks" in (ROOT / "Dockerfile").read_text()

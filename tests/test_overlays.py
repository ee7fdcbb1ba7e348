"""What each deploy/overlays/<layout>/ promises its Prometheus: discovery RBAC bound to
the right ServiceAccount, a ServiceMonitor the layout accepts (UWM: no files,
honorLabels false), a serving certificate the scrape can verify, a scraper identity
the exporter lets in, a NetworkPolicy that admits only the monitoring namespaces,
one place for the image, and bindings that follow a re-namespacing."""

from __future__ import annotations

import re
import shutil

import pytest
import yaml
from ov_exporter.version import __version__

from .overlays import (
    DEPLOY,
    MONITORING_NAMESPACES,
    NAMESPACE,
    OVERLAYS,
    PROMETHEUS_ACCOUNT,
    arg,
    exporter_container,
    kustomize,
    of_kind,
    one,
    rendered,
    wrapping_kustomization,
)

overlays = pytest.mark.parametrize("overlay", OVERLAYS)
FILE_REFERENCES = {"bearerTokenFile", "caFile", "certFile", "keyFile", "passwordFile", "credentialsFile"}
DISCOVERY = {("", "services"), ("", "endpoints"), ("", "pods"), ("discovery.k8s.io", "endpointslices")}


def _keys(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def _pod_labels(docs: list[dict]) -> dict:
    return one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]


# ---------------------------------------------------------------- namespace


@overlays
def test_namespace_is_ours_restricted_and_not_labelled_for_platform_monitoring(overlay):
    docs = rendered(overlay)
    labels = one(docs, "Namespace")["metadata"]["labels"]
    assert one(docs, "Namespace")["metadata"]["name"] == NAMESPACE
    assert "openshift.io/cluster-monitoring" not in labels, "Red Hat reserves this label for its components"
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
    in_openshift = [
        (d["kind"], d["metadata"]["namespace"])
        for d in docs
        if d["metadata"].get("namespace", "").startswith("openshift-")
    ]
    # The only object in an openshift-* namespace: the AlertingRule, which OpenShift reads there only.
    assert in_openshift == ([("AlertingRule", "openshift-monitoring")] if overlay == "openshift-user-workload" else [])


# ---------------------------------------------------------------- discovery RBAC


@overlays
def test_prometheus_discovery_role_is_bound_to_the_layouts_prometheus(overlay):
    docs = rendered(overlay)
    [role] = of_kind(docs, "Role")
    granted = {
        (group, resource): set(rule["verbs"])
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert set(granted) == DISCOVERY
    assert all(verbs == {"get", "list", "watch"} for verbs in granted.values()), granted
    [binding] = of_kind(docs, "RoleBinding")
    assert binding["metadata"]["namespace"] == role["metadata"]["namespace"] == NAMESPACE
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    namespace, account = PROMETHEUS_ACCOUNT[overlay]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": namespace}]


# ---------------------------------------------------------------- scraping


@overlays
def test_servicemonitor_scrapes_https_with_a_verified_certificate_and_the_scraper_token(overlay):
    docs = rendered(overlay)
    monitor = one(docs, "ServiceMonitor")
    service = one(docs, "Service")
    [endpoint] = monitor["spec"]["endpoints"]
    assert not _keys(monitor) & FILE_REFERENCES, "reference Secrets and ConfigMaps, never files"
    assert endpoint["scheme"] == "https"
    tls = endpoint["tlsConfig"]
    assert tls["serverName"] == f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc"
    assert not tls.get("insecureSkipVerify")

    # The token: a ServiceAccount token Secret of the scraper, whose ClusterRole may get /metrics.
    credentials = endpoint["authorization"]["credentials"]
    assert endpoint["authorization"].get("type", "Bearer") == "Bearer" and credentials["key"] == "token"
    secret = one(docs, "Secret", credentials["name"])
    assert secret["type"] == "kubernetes.io/service-account-token"
    scraper = secret["metadata"]["annotations"]["kubernetes.io/service-account.name"]
    one(docs, "ServiceAccount", scraper)
    [binding] = [b for b in of_kind(docs, "ClusterRoleBinding") if b["subjects"][0]["name"] == scraper]
    role = one(docs, "ClusterRole", binding["roleRef"]["name"])
    assert role["rules"] == [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]

    # The CA: what signs the serving certificate the Deployment mounts.
    mounted = next(
        v["secret"]["secretName"]
        for v in one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]
        if "secret" in v
    )
    if overlay == "openshift-user-workload":
        annotations = service["metadata"]["annotations"]
        assert annotations["service.beta.openshift.io/serving-cert-secret-name"] == mounted
        ca = tls["ca"]["configMap"]
        bundle = one(docs, "ConfigMap", ca["name"])
        assert bundle["metadata"]["annotations"]["service.beta.openshift.io/inject-cabundle"] == "true"
        assert ca["key"] == "service-ca.crt"  # the key the service CA writes
        assert endpoint["honorLabels"] is False, "user-workload monitoring forbids honorLabels: true"
    else:
        certificate = one(docs, "Certificate")
        assert certificate["spec"]["secretName"] == mounted == tls["ca"]["secret"]["name"]
        assert tls["ca"]["secret"]["key"] == "ca.crt"
        assert tls["serverName"] in certificate["spec"]["dnsNames"]
        issuer = one(docs, certificate["spec"]["issuerRef"]["kind"], certificate["spec"]["issuerRef"]["name"])
        assert "selfSigned" in issuer["spec"]
        assert endpoint["honorLabels"] is True


def test_user_workload_rules_are_evaluated_by_prometheus_and_platform_alerts_by_openshift_monitoring():
    docs = rendered("openshift-user-workload")
    rule = one(docs, "PrometheusRule")
    assert rule["metadata"]["namespace"] == NAMESPACE
    assert rule["metadata"]["labels"]["openshift.io/prometheus-rule-evaluation-scope"] == "leaf-prometheus"
    alerting = one(docs, "AlertingRule")
    assert alerting["apiVersion"] == "monitoring.openshift.io/v1"
    assert alerting["metadata"]["namespace"] == "openshift-monitoring"


# ---------------------------------------------------------------- network policy


@overlays
def test_networkpolicy_admits_only_the_monitoring_namespaces_to_the_metrics_port(overlay):
    docs = rendered(overlay)
    [policy] = of_kind(docs, "NetworkPolicy")
    spec = policy["spec"]
    assert spec["podSelector"]["matchLabels"].items() <= _pod_labels(docs).items()
    assert spec["policyTypes"] == ["Ingress"]
    [rule] = spec["ingress"]
    assert rule["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert "metrics" in {p["name"] for p in exporter_container(docs)["ports"]}
    admitted = set()
    for peer in rule["from"]:
        assert set(peer) == {"namespaceSelector"}, f"only namespaces are admitted: {peer}"
        [expression] = peer["namespaceSelector"]["matchExpressions"]
        assert expression["key"] == "kubernetes.io/metadata.name" and expression["operator"] == "In"
        admitted |= set(expression["values"])
    assert admitted == MONITORING_NAMESPACES[overlay]


# ---------------------------------------------------------------- image


def test_the_image_is_set_in_one_place_with_the_package_version_as_tag():
    with_images = [p for p in DEPLOY.rglob("kustomization.yaml") if "images" in yaml.safe_load(p.read_text())]
    assert with_images == [DEPLOY / "base" / "kustomization.yaml"]
    [image] = yaml.safe_load(with_images[0].read_text())["images"]
    assert image == {"name": "ov-exporter", "newName": "ov-exporter", "newTag": __version__}
    for overlay in OVERLAYS:
        assert exporter_container(rendered(overlay))["image"] == f"ov-exporter:{__version__}"


def test_a_registry_and_digest_set_in_the_base_reach_every_overlay(tmp_path):
    """What `kustomize edit set image ov-exporter=REG/REPO@sha256:...` writes in deploy/base
    (deploy/README.md), applied to a copy of deploy/."""
    copy = tmp_path / "deploy"
    shutil.copytree(DEPLOY, copy)
    kustomization = copy / "base" / "kustomization.yaml"
    doc = yaml.safe_load(kustomization.read_text())
    digest = "sha256:" + "0123456789abcdef" * 4
    doc["images"] = [{"name": "ov-exporter", "newName": "registry.example.com/team/ov-exporter", "digest": digest}]
    kustomization.write_text(yaml.safe_dump(doc))
    for overlay in OVERLAYS:
        image = exporter_container(kustomize(copy / "overlays" / overlay))["image"]
        assert image == f"registry.example.com/team/ov-exporter@{digest}"
    assert "kustomize edit set image ov-exporter=" in (DEPLOY / "README.md").read_text()


# ---------------------------------------------------------------- another namespace


def _documented_wrapper() -> str:
    """The kustomization deploy/README.md gives for another namespace, after its
    `resources:` line (the test supplies its own relative path)."""
    readme = (DEPLOY / "README.md").read_text()
    match = re.search(r"<!-- another-namespace -->\s*```yaml\n(.*?)```", readme, re.S)
    assert match, "deploy/README.md: the another-namespace kustomization is missing"
    lines = match.group(1).splitlines()
    body = [line for line in lines if not line.startswith(("resources:", "  - ../", "  - <"))]
    return "\n".join(body) + "\n"


@overlays
def test_a_wrapping_namespace_moves_every_binding_subject_and_nothing_else(tmp_path, overlay):
    wrapper = wrapping_kustomization(tmp_path / "wrap", overlay, _documented_wrapper().replace("<namespace>", "other"))
    docs = kustomize(wrapper)
    ours = {a["metadata"]["name"] for a in of_kind(docs, "ServiceAccount")}
    assert ours == {"ov-exporter", "ov-exporter-scraper"}
    prometheus_namespace, prometheus = PROMETHEUS_ACCOUNT[overlay]
    subjects = [s for b in of_kind(docs, "ClusterRoleBinding") + of_kind(docs, "RoleBinding") for s in b["subjects"]]
    assert len(subjects) == 4
    for subject in subjects:
        if subject["name"] in ours:
            assert subject["namespace"] == "other", subject
        else:
            assert (subject["namespace"], subject["name"]) == (prometheus_namespace, prometheus)
    for doc in docs:
        if doc["kind"] == "AlertingRule":
            assert doc["metadata"]["namespace"] == "openshift-monitoring"
        elif doc["kind"] == "Namespace":
            assert doc["metadata"]["name"] == "other"
        elif doc["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            assert doc["metadata"]["namespace"] == "other", doc["kind"]
    # The scrape verifies the certificate by the Service's new DNS name.
    [endpoint] = one(docs, "ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["tlsConfig"]["serverName"] == "ov-exporter.other.svc"
    for certificate in of_kind(docs, "Certificate"):
        assert endpoint["tlsConfig"]["serverName"] in certificate["spec"]["dnsNames"]
    assert arg(exporter_container(docs), "--auth") == "kubernetes"

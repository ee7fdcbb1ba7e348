"""Every object every deploy/ overlay renders validates against a published schema:
core kinds against the Kubernetes OpenAPI schemas (kubernetes-validate, strict),
ServiceMonitor, PrometheusRule, Certificate and Issuer against the validators
@kubernetes-models publishes from the projects' CRDs (run with node from
.venv/share/crd-schemas, `make crd-schemas`), and AlertingRule against the fields
of openshift/api recorded in tests/crd_schemas/alertingrule.schema.yaml."""

from __future__ import annotations

import copy
import functools
import json
import subprocess
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from .conftest import ROOT, require_binary
from .overlays import OVERLAYS, one, rendered

SCHEMAS = ROOT / "tests" / "crd_schemas"
INSTALLED = ROOT / ".venv" / "share" / "crd-schemas"
# OpenShift 4.14 runs Kubernetes 1.27; 1.32 is the kubectl of these machines.
KUBERNETES_VERSIONS = ("1.27", "1.32")
CORE_GROUPS = {"v1", "apps/v1", "rbac.authorization.k8s.io/v1", "networking.k8s.io/v1"}
NODE_VALIDATED = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("cert-manager.io/v1", "Certificate"),
    ("cert-manager.io/v1", "Issuer"),
}
ALERTING_RULE = ("monitoring.openshift.io/v1", "AlertingRule")
overlays = pytest.mark.parametrize("overlay", OVERLAYS)


def node_validate(objects: list[dict], tmp_path: Path) -> list[dict]:
    """Problems the published validators find ({index, kind, name, error}); none = valid."""
    node = require_binary("node")
    if not (INSTALLED / "node_modules" / "@kubernetes-models" / "prometheus-operator").is_dir():
        pytest.fail(f"{INSTALLED} is not installed: run `make crd-schemas` (`make test` does)")
    given = tmp_path / "objects.json"
    given.write_text(json.dumps(objects))
    proc = subprocess.run(
        [node, "--input-type=module", "-", str(given)],
        input=(SCHEMAS / "validate.mjs").read_text(),
        cwd=INSTALLED,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@functools.cache
def _alerting_rule_schema() -> dict:
    return yaml.safe_load((SCHEMAS / "alertingrule.schema.yaml").read_text())


def alerting_rule_problems(obj: dict) -> list[str]:
    validator = jsonschema.Draft202012Validator(_alerting_rule_schema())
    problems = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)]
    names = [g.get("name") for g in obj.get("spec", {}).get("groups", [])]
    if len(names) != len(set(names)):  # +listType=map, +listMapKey=name
        problems.append(f"spec/groups: duplicate names {names}")
    return problems


@overlays
def test_every_rendered_kind_has_a_schema(overlay):
    unchecked = (
        {(d["apiVersion"], d["kind"]) for d in rendered(overlay) if d["apiVersion"] not in CORE_GROUPS}
        - NODE_VALIDATED
        - {ALERTING_RULE}
    )
    assert not unchecked


@overlays
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_core_objects_validate_against_the_kubernetes_schemas(overlay, version):
    for doc in rendered(overlay):
        if doc["apiVersion"] in CORE_GROUPS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(
                    f"{overlay}: {doc['kind']} {doc['metadata']['name']}: {exc.message} at "
                    f"{'/'.join(map(str, exc.path))}"
                )


def test_kubernetes_validate_catches_an_unknown_field():
    policy = copy.deepcopy(one(rendered("kubernetes"), "NetworkPolicy"))
    policy["spec"]["ingress"][0]["form"] = policy["spec"]["ingress"][0].pop("from")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(policy, KUBERNETES_VERSIONS[-1], strict=True)


@overlays
def test_monitoring_and_cert_manager_objects_validate_against_the_published_crd_schemas(overlay, tmp_path):
    objects = [d for d in rendered(overlay) if (d["apiVersion"], d["kind"]) in NODE_VALIDATED]
    assert {d["kind"] for d in objects} >= {"ServiceMonitor", "PrometheusRule"}
    assert node_validate(objects, tmp_path) == []


def test_the_published_validators_reject_what_the_crds_reject(tmp_path):
    docs = rendered("kubernetes")
    monitor = copy.deepcopy(one(docs, "ServiceMonitor"))
    monitor["spec"]["endpoints"][0]["scheme"] = "httpz"
    rule = copy.deepcopy(one(docs, "PrometheusRule"))
    del rule["spec"]["groups"][0]["rules"][0]["expr"]
    certificate = copy.deepcopy(one(docs, "Certificate"))
    certificate["spec"]["usages"].append("not a usage")
    problems = node_validate([monitor, rule, certificate], tmp_path)
    assert [(p["index"], p["kind"]) for p in problems] == [
        (0, "ServiceMonitor"),
        (1, "PrometheusRule"),
        (2, "Certificate"),
    ], problems
    assert "scheme" in problems[0]["error"] and "expr" in problems[1]["error"]


def test_the_alertingrule_validates_against_openshift_api_fields():
    alerting = one(rendered("openshift-user-workload"), "AlertingRule")
    assert alerting_rule_problems(alerting) == []


@pytest.mark.parametrize(
    "mutate, problem",
    [
        (lambda o: o["spec"]["groups"][0]["rules"].append({"record": "x:y:z", "expr": "1"}), "'alert' is a required"),
        (lambda o: o["spec"]["groups"][0]["rules"][0].update({"for": "5 minutes"}), "does not match"),
        (lambda o: o["spec"]["groups"].append(copy.deepcopy(o["spec"]["groups"][0])), "duplicate names"),
        (lambda o: o["spec"].update({"groups": []}), "should be non-empty"),
    ],
)
def test_the_alertingrule_schema_rejects_what_openshift_api_rejects(mutate, problem):
    alerting = copy.deepcopy(one(rendered("openshift-user-workload"), "AlertingRule"))
    mutate(alerting)
    assert any(problem in p for p in alerting_rule_problems(alerting)), alerting_rule_problems(alerting)

"""Rendering deploy/overlays/<layout>/ with the real `kubectl kustomize`, shared by
tests/test_deploy.py, tests/test_overlays.py and tests/test_crd_schemas.py."""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

import yaml

from .conftest import ROOT, require_binary

DEPLOY = ROOT / "deploy"
OVERLAYS = ("kubernetes", "openshift-user-workload")
NAMESPACE = "ov-exporter"

# The Prometheus that scrapes the exporter in each layout, and the namespaces its
# traffic comes from. kubernetes: kube-prometheus' defaults (prometheus-operator/
# kube-prometheus v0.18.0 manifests/prometheus-prometheus.yaml: prometheus-k8s in
# `monitoring`); OpenShift: openshift/cluster-monitoring-operator release-4.18
# assets/prometheus-user-workload/ (prometheus-user-workload in
# openshift-user-workload-monitoring) and the platform stack in openshift-monitoring.
PROMETHEUS_ACCOUNT = {
    "kubernetes": ("monitoring", "prometheus-k8s"),
    "openshift-user-workload": ("openshift-user-workload-monitoring", "prometheus-user-workload"),
}
MONITORING_NAMESPACES = {
    "kubernetes": {"monitoring"},
    "openshift-user-workload": {"openshift-user-workload-monitoring", "openshift-monitoring"},
}


def kustomize(directory: Path) -> list[dict]:
    """Called inside each test: a missing kubectl fails the test, it never skips."""
    return [doc for doc in yaml.safe_load_all(_kustomize(require_binary("kubectl"), str(directory))) if doc]


@functools.cache
def _kustomize(kubectl: str, directory: str) -> str:
    proc = subprocess.run([kubectl, "kustomize", directory], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"kubectl kustomize {directory} failed:\n{proc.stderr}"
    return proc.stdout


def rendered(overlay: str) -> list[dict]:
    return kustomize(DEPLOY / "overlays" / overlay)


def wrapping_kustomization(directory: Path, overlay: str, body: str) -> Path:
    """A kustomization in `directory` whose only resource is the overlay (by a relative
    path: kustomize refuses absolute ones), followed by `body`."""
    directory.mkdir(parents=True, exist_ok=True)
    relative = os.path.relpath(DEPLOY / "overlays" / overlay, directory)
    (directory / "kustomization.yaml").write_text(f"resources:\n  - {relative}\n{body}")
    return directory


def of_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict], kind: str, name: str | None = None) -> dict:
    found = [d for d in of_kind(docs, kind) if name is None or d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}{' ' + name if name else ''}, got {len(found)}"
    return found[0]


def exporter_container(docs: list[dict]) -> dict:
    [container] = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    return container


def arg(container: dict, flag: str) -> str:
    args = container["args"]
    assert flag in args, f"{flag} missing from {args}"
    return args[args.index(flag) + 1]

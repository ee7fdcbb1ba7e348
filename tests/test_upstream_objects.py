"""The upstream facts the code relies on, in the repository with their sources.

exporter/docs/upstream-objects.yaml lists, per kind the exporter reads, every field path
its record decodes with the upstream type and where it was read (repository, file,
release tags); exporter/docs/openshift-monitoring.yaml does the same for the OpenShift
monitoring rules deploy/ relies on; exporter/scripts/upstream_doc.py renders both (and a
summary of alerts/upstream-metrics.yaml) into exporter/docs/upstream.md. These tests keep
the documents and the records from drifting apart.
"""

from __future__ import annotations

import copy
import importlib.util
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
from ov_exporter.records import (
    KINDS,
    NodeNetworkConfigurationPolicy,
    TridentBackendConfig,
    VirtualMachineInstance,
)

from .conftest import ROOT

SCRIPT = ROOT / "exporter" / "scripts" / "upstream_doc.py"
DOCS = ROOT / "exporter" / "docs"


def _load_script():
    spec = importlib.util.spec_from_file_location("upstream_doc", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


doc = _load_script()


class _Inner(msgspec.Struct, rename="camel"):
    max_skew: int = 0


class _Outer(msgspec.Struct, rename="camel"):
    inner_list: list[_Inner] | None = None
    single: _Inner | None = None
    provider_id: str = msgspec.field(default="", name="providerID")


@pytest.fixture(scope="module")
def objects() -> dict:
    return doc.load_yaml(doc.OBJECTS)


@pytest.fixture(scope="module")
def monitoring() -> dict:
    return doc.load_yaml(doc.MONITORING)


def test_field_paths_follow_nested_records_lists_and_renames():
    vmi = doc.record_field_paths(VirtualMachineInstance)
    assert "status.currentCPUTopology.sockets" in vmi  # explicit name= override
    assert "status.migrationState.migrationConfiguration.completionTimeoutPerGiB" in vmi
    assert "spec.volumes[].persistentVolumeClaim.claimName" in vmi  # list of records, camelCase
    assert "spec.domain.resources.requests" in vmi  # a map is a leaf
    assert "status" not in vmi and "spec.volumes" not in vmi  # records are followed, not listed
    assert "spec.desiredState.interfaces[].link-aggregation.port" in doc.record_field_paths(
        NodeNetworkConfigurationPolicy
    )
    assert "spec.storage[].limitVolumeSize" in doc.record_field_paths(TridentBackendConfig)

    assert doc.record_field_paths(_Outer) == ["innerList[].maxSkew", "single.maxSkew", "providerID"]


def test_every_path_every_record_reads_is_listed_with_a_source_and_nothing_else(objects):
    assert doc.validate_objects(objects) == []
    assert set(objects["kinds"]) == {k.kind for k in KINDS}
    for info in KINDS:
        kind = objects["kinds"][info.kind]
        assert kind["repository"] and kind["path"] and len(kind["tags"]) == 2, info.kind
        assert set(kind["fields"]) == set(doc.record_field_paths(info.record)), info.kind
        for path, entry in kind["fields"].items():
            assert (
                ("go" in entry or "rust" in entry)
                and entry.get("in")
                or entry.get("not_upstream")
                or entry.get("unverified")
            ), f"{info.kind} {path}"


def test_the_validation_names_what_drifted(objects):
    broken = copy.deepcopy(objects)
    vmi = broken["kinds"]["VirtualMachineInstance"]
    del vmi["fields"]["status.nodeName"]
    vmi["fields"]["status.nodeNameTypo"] = {"go": "string", "in": "VirtualMachineInstanceStatus"}
    vmi["fields"]["status.phase"] = {"in": "VirtualMachineInstanceStatus"}
    vmi["fields"]["spec.nodeSelector"]["since"] = "v0.1.0"
    del broken["kinds"]["Node"]["repository"]
    del broken["kinds"]["Pod"]
    broken["kinds"]["Unknown"] = {}
    errors = "\n".join(doc.validate_objects(broken))
    file = "exporter/docs/upstream-objects.yaml"
    assert (
        f"{file}: kinds.VirtualMachineInstance.fields: 'status.nodeName' is read by VirtualMachineInstance "
        "but not listed" in errors
    )
    assert "'status.nodeNameTypo' is not read by VirtualMachineInstance (stale entry)" in errors
    assert (
        "kinds.VirtualMachineInstance.fields.status.phase: needs exactly one of go, rust, not_upstream, unverified"
        in errors
    )
    assert "kinds.VirtualMachineInstance.fields.spec.nodeSelector.since: 'v0.1.0' is not a tag in `read`" in errors
    assert "kinds.Node.repository: expected owner/name" in errors
    assert "kinds.Pod: missing" in errors
    assert "kinds.Unknown: not a kind of ov_exporter.records.KINDS" in errors


def test_entries_read_elsewhere_name_their_repository_file_and_tags(objects):
    for info in KINDS:
        for path, entry in objects["kinds"][info.kind]["fields"].items():
            if "rust" in entry or "repository" in entry:
                assert entry["repository"] != objects["kinds"][info.kind]["repository"], path
                assert entry["file"], path
            if "rust" in entry:
                assert entry["tags"], path


def test_every_monitoring_rule_names_an_upstream_source(monitoring):
    assert doc.validate_monitoring(monitoring) == []
    broken = copy.deepcopy(monitoring)
    broken["rules"][0]["sources"][0].pop("refs")
    broken["rules"][1]["sources"] = []
    errors = "\n".join(doc.validate_monitoring(broken))
    first, second = broken["rules"][0]["id"], broken["rules"][1]["id"]
    assert f"rules[{first}].sources[0].refs: expected the tags or branches read" in errors
    assert f"rules[{second}].sources: every rule needs at least one upstream source" in errors


def test_upstream_md_is_current():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    text = (DOCS / "upstream.md").read_text()
    for info in KINDS:
        assert f"\n### {info.kind}\n" in text


def test_check_fails_on_a_stale_document_and_a_bad_input(tmp_path, monkeypatch, capsys):
    stale = tmp_path / "upstream.md"
    stale.write_text("# old\n")
    monkeypatch.setattr(doc, "OUTPUT", stale)
    assert doc.main(["--check"]) == 1
    assert "upstream.md is stale" in capsys.readouterr().err
    bad = tmp_path / "openshift-monitoring.yaml"
    bad.write_text("rules: [unclosed\n")
    monkeypatch.setattr(doc, "MONITORING", bad)
    assert doc.main(["--check"]) == 1
    assert f"{bad}: cannot read" in capsys.readouterr().err


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def widgets_clone(tmp_path_factory) -> Path:
    """A tiny Go API in a git clone at DIR/example/widgets, tagged v1.0.0 and v1.1.0 (which adds spec.color)."""
    clones = tmp_path_factory.mktemp("clones")
    repo = clones / "example" / "widgets"
    (repo / "api" / "v1").mkdir(parents=True)
    (repo / "api" / "other").mkdir()
    (repo / "go.mod").write_text("module example.com/widgets\n\ngo 1.22\n")
    (repo / "api" / "other" / "selector.go").write_text(
        'package other\n\ntype Selector struct {\n\tMatchLabels map[string]string `json:"matchLabels,omitempty"`\n}\n'
    )
    types_go = """package v1

import (
\tother "example.com/widgets/api/other"
)

// Meta is embedded inline.
type Meta struct {
\tName string `json:"name"`
}

type Widget struct {
\tMeta `json:",inline"`
\tSpec WidgetSpec `json:"spec"`
}

type WidgetSpec struct {
\t// Count of parts; a comment with `json:"decoy"` in it.
\tCount    *uint32        `json:"count,omitempty"`
\tParts    []Part         `json:"parts"`
\tSelector other.Selector `json:"selector"`
}

type Part struct {
\tName string `json:"name"`
}
"""
    (repo / "api" / "v1" / "types.go").write_text(types_go)
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "v1.0.0")
    _git(repo, "tag", "v1.0.0")
    (repo / "api" / "v1" / "types.go").write_text(
        types_go.replace("\tParts ", '\tColor    string         `json:"color"`\n\tParts ')
    )
    _git(repo, "commit", "-qam", "color")
    _git(repo, "tag", "v1.1.0")
    return clones


def test_go_paths_resolve_through_json_tags_inline_structs_lists_and_imports(widgets_clone):
    repo = doc.GoRepo(widgets_clone, "example/widgets", "v1.1.0")
    resolve = doc.resolve_go_path
    assert resolve(repo, "api/v1", "Widget", "name") == ("string", "Meta")
    assert resolve(repo, "api/v1", "Widget", "spec.count") == ("*uint32", "WidgetSpec")
    assert resolve(repo, "api/v1", "Widget", "spec.color") == ("string", "WidgetSpec")
    assert resolve(repo, "api/v1", "Widget", "spec.parts[].name") == ("string", "Part")
    assert resolve(repo, "api/v1", "Widget", "spec.selector.matchLabels") == ("map[string]string", "Selector")
    with pytest.raises(LookupError, match=r"spec.decoy: no json field 'decoy' in WidgetSpec"):
        resolve(repo, "api/v1", "Widget", "spec.decoy")
    with pytest.raises(LookupError, match=r"spec.count\[\]: \*uint32 is not a list"):
        resolve(repo, "api/v1", "Widget", "spec.count[]")
    older = doc.GoRepo(widgets_clone, "example/widgets", "v1.0.0")
    with pytest.raises(LookupError, match=r"spec.color: no json field 'color' in WidgetSpec"):
        resolve(older, "api/v1", "Widget", "spec.color")
    with pytest.raises(doc.InputError, match="no clone of example/missing"):
        doc.GoRepo(widgets_clone, "example/missing", "v1.0.0")

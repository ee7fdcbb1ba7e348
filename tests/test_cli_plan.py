"""`ov-exporter plan` end to end on the demo cluster: every output, --verify on a changed
state, and usage errors (in process: main() with the demo source)."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml
from ov_exporter.cli import main
from ov_exporter.sources.snapshot import demo_path


def _run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["plan", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_json_plan_of_the_demo_moves_movable_vms_only_and_knows_its_basis(capsys):
    code, out, _ = _run(capsys, "--demo", "--output", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["format"] == "ov-exporter/rebalance-plan/v1" and doc["goal"] == "spread"
    assert doc["based_on"]["read_at"] == "2025-01-20T09:30:00Z"  # the demo's capture time
    assert doc["based_on"]["resource_versions"]["nodes"] and doc["based_on"]["resource_versions"]["vmis"]
    moves = [m for w in doc["waves"] for m in w["moves"]]
    assert moves and doc["spread"]["after"] < doc["spread"]["before"]
    assert 0 <= doc["spread"]["lower_bound"] <= doc["spread"]["after"]  # the gap to optimal, on every plan
    excluded = {(e["namespace"], e["vm"]): e["reason"] for e in doc["excluded"]}
    assert not {(m["namespace"], m["vm"]) for m in moves} & set(excluded)
    assert "rwo_disk" in excluded.values() and "not_converging" in excluded.values()
    assert any("predates v1.6.0" in n for n in doc["notes"])  # the demo runs KubeVirt 1.4
    assert doc["basis"]["kind"] == "allocation"  # no node usage samples in the demo


def test_table_and_markdown_show_waves_nodes_and_exclusions(capsys):
    code, table, _ = _run(capsys, "--demo")
    assert code == 0 and "wave 1 (expected" in table and "not moved:" in table and "lower bound" in table
    code, md, _ = _run(capsys, "--demo", "--output", "markdown")
    assert code == 0
    for heading in ("# Rebalance plan", "## Before / after per node", "### Wave 1", "## Risks", "## Not moved"):
        assert heading in md
    assert "## Watch after each wave" in md and "ov-post-rebalance" in md


def test_manifests_are_one_vmim_per_move_pinned_by_added_node_selector(capsys):
    _, out, _ = _run(capsys, "--demo", "--output", "json")
    moves = [m for w in json.loads(out)["waves"] for m in w["moves"]]
    code, manifests, _ = _run(capsys, "--demo", "--output", "manifests")
    docs = [d for d in yaml.safe_load_all(manifests) if d]
    assert code == 0 and len(docs) == len(moves)
    for doc, move in zip(docs, moves):
        assert doc["kind"] == "VirtualMachineInstanceMigration" and doc["apiVersion"] == "kubevirt.io/v1"
        assert doc["spec"] == {"vmiName": move["vm"], "addedNodeSelector": {"kubernetes.io/hostname": move["target"]}}
        assert doc["metadata"]["namespace"] == move["namespace"]
        assert "ov-exporter.openshift.io/rebalance" in doc["metadata"]["annotations"]


def test_drain_plan_empties_the_node(capsys):
    code, out, _ = _run(capsys, "--demo", "--goal", "drain", "worker-1", "--output", "json")
    doc = json.loads(out)
    assert code == 0 and doc["goal"] == "drain" and doc["node"] == "worker-1"
    assert {m["source"] for w in doc["waves"] for m in w["moves"]} == {"worker-1"}


def test_verify_reports_done_superseded_and_still_safe_moves(capsys, tmp_path):
    _, out, _ = _run(capsys, "--demo", "--output", "json")
    plan = tmp_path / "plan.json"
    plan.write_text(out)
    moves = [m for w in json.loads(out)["waves"] for m in w["moves"]]
    assert len(moves) >= 2
    code, same, _ = _run(capsys, "--demo", "--verify", str(plan))
    assert code == 0 and f"still_safe {len(moves)}" in same
    # The cluster an hour later: the first move done, the second VM moved elsewhere.
    snapshot = tmp_path / "later"
    shutil.copytree(demo_path(), snapshot)
    vmis = yaml.safe_load((snapshot / "vmis.yaml").read_text())
    first, second = moves[0], moves[1]
    elsewhere = next(
        n for n in ("worker-0", "worker-2", "worker-4", "worker-5") if n not in (second["source"], second["target"])
    )
    for item in vmis["items"]:
        key = (item["metadata"]["namespace"], item["metadata"]["name"])
        if key == (first["namespace"], first["vm"]):
            item["status"]["nodeName"] = first["target"]
        if key == (second["namespace"], second["vm"]):
            item["status"]["nodeName"] = elsewhere
    (snapshot / "vmis.yaml").write_text(yaml.safe_dump(vmis))
    code, later, _ = _run(capsys, "--snapshot", str(snapshot), "--verify", str(plan))
    assert code == 1  # not every move is still to do and safe
    assert f"done            {first['namespace']}/{first['vm']}" in later
    assert f"superseded      {second['namespace']}/{second['vm']}" in later and f"runs on {elsewhere}" in later


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--goal", "drain"], "--goal: expected spread, drain NODE"),
        (["--goal", "pack"], "--goal: expected spread, drain NODE"),
        (["--goal", "drain", "nope"], "no node named 'nope'"),
        (["--wave-size", "0"], "--wave-size: expected a positive number"),
        (["--effort", "0"], "--effort: expected a positive number"),
        (["--basis", "usage"], "--basis usage: no fresh node utilisation samples"),  # the demo has none
    ],
)
def test_usage_errors_exit_2_naming_the_flag(capsys, args, needle):
    code, _, err = _run(capsys, "--demo", *args)
    assert code == 2 and needle in err


def test_verify_of_a_file_that_is_not_a_plan_names_file_and_field(capsys, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "ov-exporter/rebalance-plan/v1", "waves": [{"moves": [{"vm": "x"}]}]}))
    code, _, err = _run(capsys, "--demo", "--verify", str(bad))
    assert code == 2 and f"--verify {bad}: waves[0].moves[0].namespace" in err
    bad.write_text("[]")
    code, _, err = _run(capsys, "--demo", "--verify", str(bad))
    assert code == 2 and "format" in err

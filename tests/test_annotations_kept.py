"""Records keep only the annotation keys some check reads (`records.keep_annotations`,
set by the judging commands from `cli.annotations_read`): the checks read no other key,
findings are the same as with every annotation kept, and `snapshot` keeps them all."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest
from ov_exporter import cli, records
from ov_exporter.config import Config
from ov_exporter.records import Node, decode_json
from ov_exporter.runner import evaluate
from ov_exporter.sources import DemoSource, SnapshotSource
from ov_exporter.store import Store

CLEAN = Path(__file__).resolve().parent / "fixtures" / "clean"
UNREAD = "ov-test.example/never-read"


class Recording(dict):
    """Annotations that note every key looked up; reading them whole notes `*`."""

    def __init__(self, data: dict[str, str], read: set[str]) -> None:
        super().__init__(data)
        self.read = read

    def get(self, key, default=None):
        self.read.add(key)
        return super().get(key, default)

    def __contains__(self, key) -> bool:
        self.read.add(key)
        return super().__contains__(key)

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)

    def _whole(self):
        self.read.add("*")

    def __iter__(self):
        self._whole()
        return super().__iter__()

    def keys(self):
        self._whole()
        return super().keys()

    def items(self):
        self._whole()
        return super().items()

    def values(self):
        self._whole()
        return super().values()


def _store(source) -> Store:
    store = Store()
    source.load(store.apply)
    return store


@pytest.fixture
def keep_all():
    before = records.kept_annotations()
    records.keep_annotations(None)
    yield
    records.keep_annotations(before)


@pytest.mark.parametrize("source", [DemoSource, lambda: SnapshotSource(CLEAN)], ids=["demo", "clean"])
def test_checks_read_only_the_kept_annotation_keys(source, keep_all):
    config = Config()
    store = _store(source())
    read: set[str] = set()
    for objs in store.state().objects.values():
        for obj in objs:
            # Never empty, so that `annotations or {}` hands the recording dict to the check.
            obj.metadata.annotations = Recording({**(obj.metadata.annotations or {}), UNREAD: "x"}, read)
    evaluation = evaluate(store.state(), config)
    assert all(r.status.value != "error" for r in evaluation.results), [r.error for r in evaluation.results]
    assert "*" not in read, "a check reads every annotation of an object: an allow-list cannot hold"
    assert config.exemption_annotation in read  # the exemption filter
    assert read <= cli.annotations_read(config), read - cli.annotations_read(config)


def _outcome(store: Store, config: Config) -> list:
    evaluation = evaluate(store.state(), config)
    return [(r.spec.id, r.status, r.error, r.findings, r.samples, r.exempted) for r in evaluation.results]


@pytest.fixture(scope="module")
def renamed_demo(tmp_path_factory) -> Path:
    """The demo as a snapshot (every annotation kept) with its exemptions under another key."""
    out = tmp_path_factory.mktemp("demo")
    before = records.kept_annotations()
    records.keep_annotations(None)
    try:
        from ov_exporter.export import write_snapshot

        write_snapshot(_store(DemoSource()).state(), out)
    finally:
        records.keep_annotations(before)
    for path in out.glob("*.json"):
        path.write_text(path.read_text().replace("ov-exporter.openshift.io/exempt", "example.com/skip"))
    return out


@pytest.mark.parametrize("key", ["ov-exporter.openshift.io/exempt", "example.com/skip"])
def test_findings_equal_with_every_annotation_kept(key, renamed_demo, keep_all):
    config = Config(exemption_annotation=key)

    def source():
        return DemoSource() if key == "ov-exporter.openshift.io/exempt" else SnapshotSource(renamed_demo)

    everything = _outcome(_store(source()), config)
    records.keep_annotations(cli.annotations_read(config))
    kept = _outcome(_store(source()), config)
    assert any(r[-1] for r in everything)  # the exemption took effect
    assert kept == everything


def test_decoding_keeps_only_the_listed_keys(keep_all):
    body = {"metadata": {"name": "n1", "annotations": {"a": "1", "b": "2"}}}
    records.keep_annotations({"a"})
    assert decode_json(Node, msgspec.json.encode(body)).metadata.annotations == {"a": "1"}
    records.keep_annotations({"c"})
    assert decode_json(Node, msgspec.json.encode(body)).metadata.annotations is None
    records.keep_annotations(None)
    assert decode_json(Node, msgspec.json.encode(body)).metadata.annotations == {"a": "1", "b": "2"}


def test_check_sets_the_list_for_its_run_and_snapshot_keeps_every_annotation(tmp_path, keep_all, capsys):
    seen = []
    load = DemoSource.load

    def spy(self, emit):
        seen.append(records.kept_annotations())
        return load(self, emit)

    DemoSource.load = spy  # type: ignore[method-assign]
    try:
        assert cli.main(["check", "--demo", "--output", "json", "--fail-on", "never"]) == 0
        assert cli.main(["snapshot", "--demo", "--out", str(tmp_path)]) == 0
    finally:
        DemoSource.load = load  # type: ignore[method-assign]
    capsys.readouterr()
    assert seen == [cli.annotations_read(Config()), None]
    assert records.kept_annotations() is None  # restored after each command
    written = {
        key
        for path in tmp_path.glob("*.json")
        for item in json.loads(path.read_text())["items"]
        for key in (item.get("metadata", {}).get("annotations") or {})
    }
    assert written - cli.annotations_read(Config())  # others' annotations are in the snapshot

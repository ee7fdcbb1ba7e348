"""Property tests: the loader takes any file shape without raising, and accounts for
every object it is given (loaded, reported with its file, or ignored)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ov_exporter.records import KINDS
from ov_exporter.sources.files import load_directory
from ov_exporter.store import Store

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=20,
)
field_names = st.sampled_from(
    [
        "spec",
        "status",
        "metadata",
        "domain",
        "cpu",
        "cores",
        "volumes",
        "accessModes",
        "capacity",
        "labels",
        "annotations",
        "nodeName",
        "config",
        "items",
        "name",
    ]
)
k8s_like = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(field_names, inner, max_size=4)),
    max_leaves=25,
)


@st.composite
def objects(draw):
    kind = draw(st.sampled_from(KINDS))
    body = draw(st.dictionaries(st.sampled_from(["spec", "status"]), k8s_like, max_size=2))
    meta = draw(
        st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {"name": st.text(min_size=1, max_size=10)},
                optional={
                    "namespace": st.text(max_size=5),
                    "labels": json_values,
                    "annotations": json_values,
                    "uid": st.text(max_size=5),
                },
            ),
        )
    )
    api = f"{kind.group}/{kind.versions[0]}" if kind.group else kind.versions[0]
    return {"apiVersion": api, "kind": kind.kind, "metadata": meta, **body}


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(obj=objects(), as_json=st.booleans())
def test_every_object_is_loaded_or_reported(obj, as_json):
    with tempfile.TemporaryDirectory() as tmp:
        name = "obj.json" if as_json else "obj.yaml"
        text = json.dumps(obj) if as_json else yaml.safe_dump(obj)
        Path(tmp, name).write_text(text)
        store = Store()
        load_directory(store.apply, Path(tmp))
        loaded = sum(store.counts().values())
        problems = store.problems
        skipped = [p for p in problems if " kept without " not in p.message]
        # Objects outside their kind's label selector (e.g. Pods other than virt-handler) are ignored.
        ignored = sum(store.ignored_counts().values())
        assert loaded + len(skipped) + ignored == 1, (loaded, problems, store.ignored_counts())
        # A loaded object with problems is kept without the fields named there.
        assert len(problems) - len(skipped) <= loaded
        if ignored:
            assert any(k.kind == obj["kind"] and k.label_selector for k in KINDS), store.ignored_counts()
        for p in problems:
            assert p.where.startswith(name) and obj["kind"] in p.message


@SETTINGS
@given(value=json_values, as_json=st.booleans())
def test_arbitrary_documents_never_raise(value, as_json):
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "x.json" if as_json else "x.yaml").write_text(json.dumps(value) if as_json else yaml.safe_dump(value))
        store = Store()
        load_directory(store.apply, Path(tmp))
        assert all(p.where.startswith("x.") for p in store.problems)


@SETTINGS
@given(data=st.binary(max_size=200), suffix=st.sampled_from([".json", ".yaml", ".prom"]))
def test_arbitrary_bytes_never_raise(data, suffix):
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "f" + suffix).write_bytes(data)
        store = Store()
        load_directory(store.apply, Path(tmp))
        assert all(p.where == "f" + suffix for p in store.problems)

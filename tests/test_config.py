from __future__ import annotations

import pytest
from ov_exporter.checks import CHECK_IDS
from ov_exporter.config import Config, load_config, reference
from ov_exporter.errors import ConfigError


def write(tmp_path, text):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_defaults():
    cfg = Config()
    assert cfg.profile == "production" and cfg.cpu_target == 1.2
    assert cfg.thresholds.cpu_overcommit_max == 1.8 and cfg.thresholds.memory_overcommit_max == 0.9
    assert cfg.series_cap == 500 and cfg.threads_per_core is None  # unset: checks assume 2 and say so
    assert cfg.migration_link_bytes_per_second == 10e9 / 8


def test_full_file(tmp_path):
    path = write(
        tmp_path,
        """
profile: dev-test
thresholds: {cpu-overcommit-max: 2.0, memory-overcommit-max: 0.8}
namespaces: {include: [a, b], exclude: [b]}
exemption-annotation: example.com/skip
checks: {mtu_mismatch: {enabled: false}}
series-cap: 10
threads-per-core: 1
migration-link-speed: 25Gbit/s
""",
    )
    cfg = load_config(path, known_checks=set(CHECK_IDS))
    assert cfg.cpu_target == 1.5 and cfg.thresholds.cpu_overcommit_max == 2.0
    assert cfg.namespace_selected("a") and not cfg.namespace_selected("b") and not cfg.namespace_selected("c")
    assert cfg.namespace_selected("")  # cluster-scoped objects are never filtered out
    assert not cfg.check_enabled("mtu_mismatch") and cfg.check_enabled("rhel_nodes")
    assert cfg.migration_link_bytes_per_second == 25e9 / 8


@pytest.mark.parametrize(
    "text, key",
    [
        ("bogus: 1\n", "`bogus`"),
        ("thresholds: {cpu-overcommit-mx: 2}\n", "`cpu-overcommit-mx` - at `thresholds`"),
        ("series-cap: -5\n", "`series-cap`"),
        ("series-cap: lots\n", "`series-cap`"),
        ("profile: staging\n", "`profile`"),
        ("threads-per-core: 0\n", "`threads-per-core`"),
        ("migration-link-speed: fast\n", "migration-link-speed"),
        ("checks: {no_such_check: {enabled: false}}\n", "no_such_check"),
        ("checks: {mtu_mismatch: {enable: false}}\n", "`enable`"),
        ("thresholds: {cpu-overcommit-target: 2.5}\n", "cpu-overcommit-target"),
        ("- a list\n", "expected a mapping"),
        ("a: [unclosed\n", "invalid YAML"),
    ],
)
def test_bad_keys_and_values_name_the_key(tmp_path, text, key):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path, known_checks=set(CHECK_IDS))
    assert str(path) in str(err.value) and key in str(err.value)


def test_flags_override_the_file(tmp_path):
    path = write(tmp_path, "profile: dev-test\nseries-cap: 7\nchecks: {rhel_nodes: {enabled: true}}\n")
    cfg = load_config(path, overrides={"profile": "production", "series-cap": None, "checks.rhel_nodes.enabled": False})
    assert cfg.profile == "production" and cfg.series_cap == 7 and not cfg.check_enabled("rhel_nodes")


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")


def test_reference_lists_every_key():
    keys = [row[0] for row in reference()]
    assert {
        "profile",
        "thresholds.cpu-overcommit-max",
        "namespaces.exclude",
        "series-cap",
        "threads-per-core",
        "migration-link-speed",
        "exemption-annotation",
        "checks",
    } <= set(keys)

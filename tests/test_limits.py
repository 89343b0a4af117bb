"""Hostile sizes are refused at once, by a limit named in the message (issue 21, cases 6 and 12).

Before: a composite framework 1,000 groups deep raised RecursionError (exit 1); 10,000 deep
or with 10,000 indicators ran for more than 300 s (the tree check was cubic); a configuration
with 1,000,000 metrics took 13 GB and did not end; ``[metrics.Patents]`` was accepted and then
every record was an "unknown metric". Every check here is linear and iterative; these tests
would hang or fail on the old code, not pass slowly.
"""

from __future__ import annotations

import pytest

from cluster.composite.framework import MAX_DEPTH, MAX_GROUPS, MAX_INDICATORS, parse_framework
from cluster.config import MAX_CONFIG_BYTES, MAX_METRICS, load_config
from cluster.errors import ConfigError


def _chain(depth, indicators=1):
    """A root ``g0`` and ``depth - 1`` groups below it, each the parent of the next; the
    indicators hang under the deepest group."""
    groups = [{"code": "g0"}] + [{"code": f"g{i}", "parent": f"g{i - 1}"} for i in range(1, depth)]
    return {"group": groups,
            "indicator": [{"code": f"i{k}", "parent": f"g{depth - 1}", "column": "patents"} for k in range(indicators)]}


@pytest.mark.parametrize("depth", [1_000, MAX_GROUPS])
def test_deep_framework_is_refused_naming_the_depth_limit(depth):
    with pytest.raises(ConfigError) as err:
        parse_framework(_chain(depth))
    msg = str(err.value)
    assert f"at most {MAX_DEPTH} levels of groups (MAX_DEPTH)" in msg
    assert f"group 'g{depth - 1}' lies {depth - 1:,} levels below the index" in msg


def test_framework_with_too_many_groups_is_refused_before_any_check():
    with pytest.raises(ConfigError, match=r"10,000 \[\[group\]\] entries: a framework holds at most 5,000 groups"):
        parse_framework(_chain(10_000))


def test_framework_with_too_many_indicators_is_refused():
    with pytest.raises(ConfigError) as err:
        parse_framework(_chain(2, indicators=10_000))
    assert f"at most {MAX_INDICATORS:,} indicators (MAX_INDICATORS)" in str(err.value)


def test_frameworks_at_the_limits_are_built_and_walked_without_recursion():
    import sys

    fw = parse_framework(_chain(MAX_DEPTH + 1, indicators=MAX_INDICATORS))
    assert len(fw.indicators) == MAX_INDICATORS
    assert [g.code for g in fw.postorder()] == [f"g{i}" for i in range(MAX_DEPTH, -1, -1)]
    assert fw.depth(f"g{MAX_DEPTH}") == MAX_DEPTH
    assert fw.indicator_normalisation(fw.indicators[0]) == "minmax"
    # postorder is iterative: a recursion limit below the depth does not break it
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit // 10, 30))
    try:
        assert len(fw.postorder()) == MAX_DEPTH + 1
    finally:
        sys.setrecursionlimit(limit)


def test_a_long_cycle_is_reported_once():
    doc = _chain(3)
    doc["group"] += [{"code": f"c{i}", "parent": f"c{(i + 1) % 2000}"} for i in range(2000)]
    with pytest.raises(ConfigError) as err:
        parse_framework(doc)
    msg = str(err.value)
    assert msg.count("cycle in the tree") == 1 and "-> ..." in msg


def test_many_unknown_parents_are_listed_without_a_hint_each():
    doc = _chain(2)
    doc["indicator"] += [{"code": f"x{k}", "parent": f"nope{k}", "column": "patents"} for k in range(3000)]
    with pytest.raises(ConfigError) as err:
        parse_framework(doc)
    assert "indicator 'x2999': parent 'nope2999' is not a group." in str(err.value)


# --- the configuration -----------------------------------------------------------------------

def test_a_million_metrics_are_refused_at_once():
    with pytest.raises(ConfigError, match=rf"1,000,000 \[metrics.NAME\] tables: .* at most {MAX_METRICS} metrics"):
        load_config({"metrics": {f"m{i}": {"min_weight": 3} for i in range(1_000_000)}})


def test_a_huge_config_file_is_refused_before_parsing(tmp_path):
    p = tmp_path / "big.toml"
    p.write_text("".join(f"[metrics.m{i}]\nmin_weight = 3\n" for i in range(60_000)))
    assert p.stat().st_size > MAX_CONFIG_BYTES
    with pytest.raises(ConfigError, match="MAX_CONFIG_BYTES"):
        load_config(p)


def test_metric_names_in_another_case_are_refused_with_the_fix():
    fix = r"\[metrics.Patents\]: metric names are lower case .* Write \[metrics.patents\]"
    with pytest.raises(ConfigError, match=fix):
        load_config({"metrics": {"Patents": {"min_weight": 3}}})
    with pytest.raises(ConfigError, match="differ only in case"):
        load_config({"metrics": {"patents": {"min_weight": 3}, "PATENTS": {"min_weight": 3}}})
    with pytest.raises(ConfigError, match="lower-case letters, digits and _"):
        load_config({"metrics": {"pat ents": {"min_weight": 3}}})
    assert load_config({"metrics": {"vc_2": {"min_weight": 3}}}).metric_names == ("vc_2",)


def test_metric_name_rule_holds_for_a_config_built_directly():
    from cluster.config import Config, MetricConfig

    with pytest.raises(ConfigError, match=r"Write \[metrics.patents\]"):
        Config(metrics=(MetricConfig("Patents", min_weight=3.0),))


# --- numeric options: one rule in cluster.config, for the file, the API and the command line ---

@pytest.mark.parametrize(("override", "message"), [
    ({"eps_km": 1e-300}, "[clustering] eps_km must be in [0.01, 5000] km, got 1e-300."),
    ({"threads": 100_000}, "[engine] threads must be in [0, 1024], got 100000."),
    ({"memory_limit": "20MB"}, "[engine] memory_limit must be at least 64MB, got '20MB'"),
    ({"disc_segments": 100_000_000}, "[boundaries] disc_segments must be in [8, 1024], got 100000000."),
    ({"bootstrap": 10**12}, "[bootstrap] replicates must be in [0, 10000], got 1000000000000."),
    ({"top_n": 10**12}, "[ranking] top_n must be a positive integer at most 100000"),
    ({"max_names": 10**9}, "[places] max_names must be in [1, 20]"),
    ({"name_radius_km": float("nan")}, "[places] name_radius_km must be in [0, 1000] km, got nan."),
    ({"year_end": 10**20}, "[input] year_end must be a year in [1, 9999]"),
])
def test_numeric_overrides_are_checked_with_range_and_fix(override, message):
    with pytest.raises(ConfigError) as err:
        load_config(None, override)
    assert message in str(err.value)  # the API's wording: no command-line option named
    assert "(--" not in str(err.value).split("\n")[1]


def test_the_command_line_names_its_option():
    with pytest.raises(ConfigError) as err:
        load_config(None, {"eps_km": 1e-300, "memory_limit": "20MB", "bootstrap": -1})
    cli = err.value.for_cli()
    assert "[clustering] eps_km (--eps-km) must be in [0.01, 5000] km, got 1e-300." in cli
    assert "[engine] memory_limit (--memory-limit) must be at least 64MB" in cli
    assert "[bootstrap] replicates (--bootstrap) must be in [0, 10000], got -1." in cli


def test_memory_sizes_are_parsed_with_their_units():
    from cluster.config import memory_bytes

    assert memory_bytes("64MB") == 64 * 10**6 and memory_bytes("64 MiB") == 64 * 2**20
    assert memory_bytes("1.5GB") == 1_500_000_000 and memory_bytes("2gb") == 2 * 10**9
    assert memory_bytes("20") is None and memory_bytes("1PB") is None
    assert load_config(None, {"memory_limit": "64MB"}).memory_limit == "64MB"


@pytest.mark.parametrize("argv", [
    ["sweep", "--eps-km", "1e-300,10"],
    ["kdist", "--of-metric", "patents", "--eps-km", "1e-300"],
    ["run", "--eps-km", "1e-300"],
    ["run", "--top", "0"],
    ["run", "--memory-limit", "20MB"],
])
def test_command_line_numbers_exit_2_before_any_work(argv, tmp_path, capsys):
    from cluster.cli import main

    code = main(["-qq", *argv, "--demo-records", "100", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "(--" in err and "must be" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_index_samples_are_capped_in_the_file_and_on_the_command_line(tmp_path, capsys):
    from test_composite_io import _FW, _fw, _run_dir

    from cluster.cli import main
    from cluster.composite.framework import MAX_SAMPLES

    with pytest.raises(ConfigError, match=rf"\[uncertainty\]: samples must be an integer >= 0 and <= {MAX_SAMPLES}"):
        parse_framework({**_chain(2), "uncertainty": {"samples": 10**12}})
    run, fw = _run_dir(tmp_path), _fw(tmp_path, _FW)
    code = main(["-qq", "index", "--run", str(run), "--framework", str(fw), "--samples", str(10**12),
                 "--out", str(tmp_path / "ix")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"[uncertainty] (--samples): samples must be an integer >= 0 and <= {MAX_SAMPLES}, got {10**12}" in err
    assert not (tmp_path / "ix").exists()

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
    with pytest.raises(ConfigError, match=r"\[metrics.Patents\]: metric names are lower case .* Write \[metrics.patents\]"):
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

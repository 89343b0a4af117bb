"""Composite indices: hand calculations, data treatment, framework validation, Monte Carlo.

Fixtures are built here (tiny hand-made unit tables and square "clusters"), no run needed.
"""

import math

import numpy as np
import pandas as pd
import pytest

from cluster.composite import Uncertainty, aggregate, compute_index, load_framework, normalise, parse_framework, ranks
from cluster.composite.framework import Framework
from cluster.composite.treatment import treat_outliers
from cluster.errors import ConfigError, UserInputError


def _units():
    """Four units, hand-checkable: x2 is missing for C."""
    return pd.DataFrame(
        {"x1": [10.0, 20, 30, 40], "x2": [4.0, 2, np.nan, 0], "x3": [1.0, 3, 2, 6], "pop": [1e6, 2e6, 5e5, 4e6]},
        index=pd.Index(["A", "B", "C", "D"], name="cluster_id"),
    )


def _framework(**over) -> Framework:
    """index = (2 d1 + d2) / 3; d1 = (x1 + 3 x2) / 4 with x2 'less is better'; d2 = x3."""
    data = {
        "index": {
            "name": "toy",
            "normalisation": over.pop("normalisation", "minmax"),
            "aggregation": over.pop("aggregation", "arithmetic"),
        },
        "units": {"top_n": 0},
        "treatment": {"winsorise": False, "missing": over.pop("missing", "reweight")},
        "normalisation": {"minmax": over.pop("minmax", [0, 100])},
        "group": [
            {"code": "index"},
            {"code": "d1", "parent": "index", "weight": 2},
            {"code": "d2", "parent": "index", "weight": 1},
        ],
        "indicator": [
            {"code": "x1", "parent": "d1", "column": "x1", "weight": 1},
            {"code": "x2", "parent": "d1", "column": "x2", "weight": 3, "direction": "-"},
            {"code": "x3", "parent": "d2", "column": "x3"},
        ],
    }
    for k, v in over.items():
        data.setdefault(k, {}).update(v)
    return parse_framework(data, source="toy.toml")


# --- normalisation and aggregation by hand -------------------------------------------------------


def test_minmax_arithmetic_and_reweighting_by_hand():
    res = compute_index(_framework(), _units(), monte_carlo_on=False)
    t = res.table.loc[["A", "B", "C", "D"]]
    # x1 -> 0, 33.33, 66.67, 100; x2 (-, C missing) -> 0, 50, -, 100; x3 -> 0, 40, 20, 100
    assert t["x2"].tolist()[:2] == [0.0, 50.0] and np.isnan(t.loc["C", "x2"])
    d1 = [0.0, (100 / 3 + 3 * 50) / 4, 200 / 3, 100.0]  # C: x2 missing, x1 takes all the weight
    assert t["d1_score"].to_numpy() == pytest.approx(d1)
    assert t["d2_score"].to_numpy() == pytest.approx([0, 40, 20, 100])
    index = [(2 * a + b) / 3 for a, b in zip(d1, [0, 40, 20, 100])]
    assert t["index_score"].to_numpy() == pytest.approx(index)
    assert t["index_rank"].tolist() == [4, 3, 2, 1]
    assert res.table.index.tolist() == ["D", "C", "B", "A"]  # rank order


def test_zscore_by_hand():
    x = np.array([10.0, 20, 30, 40])
    sd = math.sqrt(((15**2) * 2 + (5**2) * 2) / 3)  # sample sd (n - 1)
    assert normalise(x, "zscore", 1) == pytest.approx((x - 25) / sd)
    assert normalise(x, "zscore", -1, zscore=(100, 10)) == pytest.approx(100 - 10 * (x - 25) / sd)
    res = compute_index(_framework(normalisation="zscore"), _units(), monte_carlo_on=False)
    t = res.table.loc[["A", "B", "C", "D"]]
    x2 = np.array([4.0, 2, 0])
    z2 = -(x2 - 2) / 2.0  # mean 2, sample sd 2; direction "-"
    z3 = (np.array([1.0, 3, 2, 6]) - 3) / math.sqrt((4 + 0 + 1 + 9) / 3)
    z1 = (x - 25) / sd
    d1 = [(z1[0] + 3 * z2[0]) / 4, (z1[1] + 3 * z2[1]) / 4, z1[2], (z1[3] + 3 * z2[2]) / 4]
    assert t["d1_score"].to_numpy() == pytest.approx(d1)
    assert t["index_score"].to_numpy() == pytest.approx([(2 * a + b) / 3 for a, b in zip(d1, z3)])


def test_geometric_and_harmonic_by_hand():
    v = np.array([[4.0, 9.0], [0.0, 5.0], [np.nan, 7.0], [np.nan, np.nan]])
    w = np.array([1.0, 3.0])
    geo = aggregate(v, w, "geometric")
    assert geo[0] == pytest.approx(4**0.25 * 9**0.75)
    assert geo[1] == 0.0 and geo[2] == pytest.approx(7.0) and np.isnan(geo[3])
    har = aggregate(v, w, "harmonic")
    assert har[0] == pytest.approx(4 / (1 / 4 + 3 / 9)) and har[1] == 0.0
    # The whole framework with geometric means on a 1-100 scale.
    res = compute_index(_framework(aggregation="geometric", minmax=[1, 100]), _units(), monte_carlo_on=False)
    t = res.table.loc[["A", "B", "C", "D"]]
    x1 = 1 + 99 * np.array([0, 1 / 3, 2 / 3, 1])
    x2 = 1 + 99 * np.array([0, 0.5, np.nan, 1])
    x3 = 1 + 99 * np.array([0, 0.4, 0.2, 1])
    d1 = [x1[0] ** 0.25 * x2[0] ** 0.75, x1[1] ** 0.25 * x2[1] ** 0.75, x1[2], x1[3] ** 0.25 * x2[3] ** 0.75]
    assert t["d1_score"].to_numpy() == pytest.approx(d1)
    assert t["index_score"].to_numpy() == pytest.approx([a ** (2 / 3) * b ** (1 / 3) for a, b in zip(d1, x3)])


def test_geometric_refuses_negative_values_with_the_fix():
    with pytest.raises(UserInputError, match="geometric aggregation needs values >= 0.*zscore = \\[100, 10\\]"):
        compute_index(_framework(normalisation="zscore", aggregation="geometric"), _units(), monte_carlo_on=False)


def test_rank_and_distance_normalisation():
    x = np.array([5.0, 1, 3, np.nan])
    assert normalise(x, "rank", 1)[:3] == pytest.approx([100, 0, 50]) and np.isnan(normalise(x, "rank", 1)[3])
    assert normalise(x, "rank", -1)[:3] == pytest.approx([0, 100, 50])
    assert normalise(x, "distance", 1)[:3] == pytest.approx([100, 20, 60])
    assert normalise(x, "distance", -1)[:3] == pytest.approx([20, 100, 100 / 3])
    with pytest.raises(UserInputError, match="distance to the best"):
        normalise(np.array([-1.0, 2]), "distance", 1, name="neg")


def test_missing_value_imputation_rules():
    t = compute_index(_framework(missing="mean"), _units(), monte_carlo_on=False).table
    assert t.loc["C", "x2"] == pytest.approx(50.0)  # mean of 4, 2, 0 = 2 -> (4 - 2) / 4 * 100
    t = compute_index(_framework(missing="zero"), _units(), monte_carlo_on=False).table
    assert t.loc["C", "x2"] == pytest.approx(100.0)  # 0 is the best for "less is better"
    t = compute_index(_framework(missing="min"), _units(), monte_carlo_on=False).table
    assert t.loc["C", "x2"] == pytest.approx(0.0)  # the worst observed value


def test_denominator_and_scale():
    fw = parse_framework(
        {
            "units": {"top_n": 0},
            "treatment": {"winsorise": False},
            "group": [{"code": "index"}],
            "indicator": [
                {"code": "pm", "parent": "index", "column": "x1", "denominator": "pop", "scale": 1e6},
                {"code": "x3", "parent": "index", "column": "x3"},
            ],
        }
    )
    res = compute_index(fw, _units(), monte_carlo_on=False)
    assert res.table.loc[["A", "B", "C", "D"], "pm_raw"].tolist() == pytest.approx([10, 10, 60, 10])


def test_ranks_ties_by_position_and_missing_last():
    assert ranks(np.array([3.0, np.nan, 3.0, 5.0])).tolist() == [2, 4, 3, 1]


def test_compute_index_leaves_its_input_unchanged():
    units = _units()
    before = units.copy()
    compute_index(_framework(missing="mean"), units, uncertainty=Uncertainty(samples=5, max_samples=10))
    pd.testing.assert_frame_equal(units, before)


# --- data treatment -------------------------------------------------------------------------------


def test_winsorisation_logged_and_exact():
    fw = _framework(treatment={"winsorise": True})
    x = np.r_[np.arange(1.0, 21.0), 1000.0]
    y, rec = treat_outliers(x, fw)
    assert rec["treatment"] == "winsorised" and rec["winsorised_high"] == 1 and rec["winsorised_low"] == 0
    assert y[-1] == 20.0 and (y[:-1] == x[:-1]).all()
    assert rec["skew"] > 2 and rec["kurtosis"] > 3.5 and abs(rec["skew_after"]) < 2


def test_log_fallback_when_winsorising_is_not_enough():
    fw = _framework(treatment={"winsorise": True, "max_winsorised": 1})
    x = np.r_[np.ones(30), 2, 3, 50, 100, 400]
    y, rec = treat_outliers(x, fw)
    assert rec["treatment"] == "log" and rec["winsorised_high"] == 0
    assert y == pytest.approx(np.log1p(99 * (x - 1) / 399))
    assert (np.argsort(y, kind="stable") == np.argsort(x, kind="stable")).all()  # order kept
    fw = _framework(treatment={"winsorise": True, "max_winsorised": 1, "fallback": "none"})
    _, rec = treat_outliers(x, fw)
    assert rec["treatment"] == "winsorised (still skewed)" and rec["winsorised_high"] == 1


# --- Monte Carlo ----------------------------------------------------------------------------------


def _bigger_units(n=25, seed=3):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x1": rng.gamma(2, 10, n),
            "x2": rng.gamma(3, 1, n),
            "x3": rng.normal(50, 10, n),
            "pop": rng.uniform(1e5, 1e7, n),
        },
        index=pd.Index([f"u{i:02d}" for i in range(n)], name="cluster_id"),
    )


def test_zero_uncertainty_collapses_to_the_point_estimate():
    zero = Uncertainty(samples=50, max_samples=100, seed=1, weights=0.0, normalisation=(), aggregation=(),
                       leave_one_out=False)
    res = compute_index(_framework(), _bigger_units(), uncertainty=zero)
    t = res.table
    assert (t["rank_median"] == t["index_rank"]).all()
    assert (t["rank_p05"] == t["index_rank"]).all() and (t["rank_p95"] == t["index_rank"]).all()
    assert len(res.sensitivity) == 0 and res.mc["mean_abs_shift"] == 0
    # Alternatives equal to the nominal choices are no uncertainty either.
    same = Uncertainty(
        samples=30, seed=1, weights=0.0, normalisation=("minmax",), aggregation=("arithmetic",), leave_one_out=False
    )
    t = compute_index(_framework(), _bigger_units(), uncertainty=same).table
    assert (t["rank_p05"] == t["index_rank"]).all() and (t["rank_p95"] == t["index_rank"]).all()


def test_monte_carlo_reproducible_by_seed_and_intervals_contain_median():
    unc = Uncertainty(
        samples=60,
        max_samples=120,
        seed=7,
        weights=0.3,
        normalisation=("minmax", "rank"),
        aggregation=("arithmetic", "geometric"),
        leave_one_out=True,
    )
    fw = _framework(minmax=[1, 100])
    a = compute_index(fw, _bigger_units(), uncertainty=unc)
    b = compute_index(fw, _bigger_units(), uncertainty=unc)
    pd.testing.assert_frame_equal(a.table, b.table)
    pd.testing.assert_frame_equal(a.sensitivity, b.sensitivity)
    t = a.table
    assert ((t["rank_p05"] <= t["rank_median"]) & (t["rank_median"] <= t["rank_p95"])).all()
    assert (t["rank_p95"] > t["rank_p05"]).any()
    assert set(a.sensitivity["factor"]) == {"weights", "normalisation", "aggregation", "leave_one_out"}
    c = compute_index(fw, _bigger_units(), uncertainty=Uncertainty(**{**unc.__dict__, "seed": 8}))
    assert not c.table["rank_p95"].equals(a.table["rank_p95"]) or not c.sensitivity.equals(a.sensitivity)


def test_single_uncertain_factor_explains_the_variance():
    unc = Uncertainty(
        samples=150,
        max_samples=300,
        seed=0,
        weights=0.0,
        normalisation=("minmax", "rank", "distance"),
        aggregation=(),
        leave_one_out=False,
    )
    s = compute_index(_framework(), _bigger_units(), uncertainty=unc).sensitivity
    assert s["factor"].tolist() == ["normalisation"]
    assert 0.7 < s["first_order"].iloc[0] < 1.3 and 0.7 < s["total_order"].iloc[0] < 1.3


def test_leave_one_out_table():
    res = compute_index(_framework(), _bigger_units(), uncertainty=Uncertainty(samples=5, max_samples=10, weights=0.1))
    loo = res.leave_one_out
    assert loo["indicator"].tolist() == ["x1", "x2", "x3"]
    assert (loo["mean_abs_rank_shift"] > 0).all()


# --- framework validation ---------------------------------------------------------------------------


def _toml(tmp_path, text):
    p = tmp_path / "fw.toml"
    p.write_text(text)
    return p


_GOOD = """
[[group]]
code = "index"
[[group]]
code = "d1"
parent = "index"
[[indicator]]
code = "x1"
parent = "d1"
column = "x1"
"""


def test_unknown_key_named_with_the_closest(tmp_path):
    with pytest.raises(ConfigError, match="fw.toml(.|\n)*code 'x1'.*unknown key 'wieght'. Did you mean 'weight'"):
        load_framework(_toml(tmp_path, _GOOD + "wieght = 2\n"))


def test_every_problem_reported_at_once(tmp_path):
    text = (
        _GOOD.replace('code = "x1"', 'code = "x1"\nweight = 0')
        + """
[[indicator]]
code = "x2"
parent = "d9"
column = "x2"
weight = -1
direction = "up"
[[group]]
code = "a"
parent = "b"
[[group]]
code = "b"
parent = "a"
[index]
aggregation = "median"
"""
    )
    with pytest.raises(ConfigError) as exc:
        load_framework(_toml(tmp_path, text))
    msg = str(exc.value)
    assert "weight must be a positive number, got 0" in msg and "got -1" in msg
    assert "parent 'd9' is not a group. Groups: a, b, d1, index." in msg
    assert "cycle in the tree: a -> b -> a" in msg
    assert "direction must be" in msg and "aggregation must be one of arithmetic, geometric, harmonic" in msg


def test_root_and_empty_groups(tmp_path):
    with pytest.raises(ConfigError, match="exactly one group must have no parent"):
        load_framework(
            _toml(
                tmp_path,
                _GOOD + '[[group]]\ncode = "other"\n[[indicator]]\ncode = "y"\nparent = "other"\ncolumn = "y"\n',
            )
        )
    with pytest.raises(ConfigError, match="group 'd2' has no indicator"):
        load_framework(_toml(tmp_path, _GOOD + '[[group]]\ncode = "d2"\nparent = "index"\n'))


def test_missing_column_and_optional_indicator():
    fw = parse_framework(
        {
            "units": {"top_n": 0},
            "group": [{"code": "index"}],
            "indicator": [
                {"code": "a", "parent": "index", "column": "x1"},
                {"code": "b", "parent": "index", "column": "x_1"},
            ],
        }
    )
    with pytest.raises(UserInputError, match="column 'x_1' is not in the unit table. Did you mean 'x1'.*optional"):
        compute_index(fw, _units(), monte_carlo_on=False)
    fw = parse_framework(
        {
            "units": {"top_n": 0},
            "group": [{"code": "index"}],
            "indicator": [
                {"code": "a", "parent": "index", "column": "x1"},
                {"code": "b", "parent": "index", "column": "nope", "optional": True},
            ],
        }
    )
    res = compute_index(fw, _units(), monte_carlo_on=False)
    assert [i.code for i in res.framework.indicators] == ["a"] and "b: column 'nope' absent" in res.dropped[0]


@pytest.mark.parametrize("name", ["gihi", "ecnu"])
def test_shipped_frameworks_are_valid(name):
    fw = load_framework(name)
    assert len(fw.children(fw.root.code)) == {"gihi": 3, "ecnu": 5}[name]
    assert all(i.column for i in fw.indicators)


def test_group_without_data_is_left_out_and_its_siblings_reweighted():
    fw = parse_framework(
        {
            "units": {"top_n": 0},
            "treatment": {"winsorise": False},
            "group": [{"code": "index"}, {"code": "d1", "parent": "index"}, {"code": "d2", "parent": "index"}],
            "indicator": [
                {"code": "a", "parent": "d1", "column": "x1"},
                {"code": "b", "parent": "d2", "column": "nope", "optional": True},
            ],
        }
    )
    res = compute_index(fw, _units(), monte_carlo_on=False)
    assert "group d2: no indicator with data" in res.dropped
    assert res.table.loc[["A", "B", "C", "D"], "index_score"].tolist() == pytest.approx([0, 100 / 3, 200 / 3, 100])


# --- sensitivity indices: SALib's estimators, intervals, clipping, convergence (issue 25) -------------


def test_estimates_outside_the_unit_interval_are_clipped_with_their_interval():
    from cluster.composite.uncertainty import sobol_indices

    # One factor explains everything (Y = X1): S1 = ST = 1, estimated with sampling error,
    # so some seeds give an estimate above 1; an inert factor (Y unchanged) gives 0.
    for seed in range(50):
        rng = np.random.default_rng(seed)
        yA, yB = rng.uniform(size=40), rng.uniform(size=40)
        s = sobol_indices(yA, yB, np.column_stack([yB, yA]), ["x1", "inert"], seed)
        if s.loc[0, "first_order"] > 1:
            break
    else:
        pytest.fail("no estimate above 1 in 50 seeds")
    r = s.iloc[0]
    assert r["first_order_clipped"] == 1.0 and r["outside_unit_interval"]
    assert r["first_order_low"] < 1.0 < r["first_order_high"]  # the interval says it is sampling error
    assert r["first_order_low"] < r["first_order"] < r["first_order_high"]
    inert = s.iloc[1]
    assert inert["first_order"] == pytest.approx(0.0, abs=1e-12) and inert["total_order"] == pytest.approx(0.0)


def test_intervals_narrow_until_the_tolerance():
    unc = Uncertainty(samples=20, seed=2, weights=0.3, normalisation=("minmax", "rank"), leave_one_out=True,
                      tolerance=0.3, max_samples=640)
    res = compute_index(_framework(), _bigger_units(), uncertainty=unc)
    conv = res.mc["convergence"]
    assert [c["samples"] for c in conv] == [20 * 2**i for i in range(len(conv))]
    assert res.mc["converged"] and conv[-1]["widest_interval"] <= 0.3 < conv[0]["widest_interval"]
    assert res.mc["replicates"] == 2 * conv[-1]["samples"]
    s = res.sensitivity
    assert ((s["first_order_low"] <= s["first_order"]) & (s["first_order"] <= s["first_order_high"])).all()
    assert ((s["total_order_high"] - s["total_order_low"]) <= 0.3).all()
    # Capped: not converged, and said so.
    capped = compute_index(_framework(), _bigger_units(),
                           uncertainty=Uncertainty(**{**unc.__dict__, "tolerance": 0.01, "max_samples": 40}))
    assert not capped.mc["converged"] and capped.mc["samples"] == 40


def test_index_md_shows_clipped_estimates_with_their_interval():
    from cluster.composite.outputs import index_markdown

    unc = Uncertainty(samples=20, seed=2, weights=0.3, normalisation=("minmax", "rank"), max_samples=20)
    res = compute_index(_framework(), _bigger_units(), uncertainty=unc)
    res.sensitivity.loc[0, ["first_order", "first_order_low", "first_order_high", "first_order_clipped"]] = [
        -0.024, -0.08, 0.03, 0.0]
    md = index_markdown(res)
    assert "0.000\\* (raw -0.024) | -0.080 – 0.030" in md
    assert "NOT converged" in md or "within the tolerance" in md

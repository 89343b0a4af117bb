"""Normalisation, weighting and aggregation (Handbook steps 5-6), and the correlation audit.

**Normalisation** brings indicators to a common scale, turning "less is better" around
(``direction = "-"``) so that higher is always better. With ``x`` the treated values of one
indicator over the units present (missing values stay missing):

* ``minmax``: ``lo + (hi - lo) (x - min) / (max - min)``, ``[lo, hi] = [normalisation]
  minmax`` (default 0-100); for ``-``: ``(max - x)`` in the numerator;
* ``zscore``: ``m + s (x - mean) / sd`` with the sample standard deviation (n - 1) and
  ``[m, s] = [normalisation] zscore`` (default 0, 1); for ``-`` the sign of ``x`` flips;
* ``rank``: percentile rank on the min-max scale, ``lo + (hi - lo) (r - 1) / (n - 1)`` with
  ``r`` the rank of ``x`` (1 = lowest, ties averaged; reversed for ``-``);
* ``distance`` (distance to the best): ``100 x / max`` for ``+`` (values must be >= 0),
  ``100 min / x`` for ``-`` (values must be > 0): the best unit scores 100.

An indicator without variance carries no information: its normalised value is missing
(and so re-weighted away) and a warning says so.

**Weighting and aggregation.** Each group's score is the weighted mean of its children
(indicators or groups), with the weights of the children *present* for the unit
(re-normalised to sum to one, so a missing value re-weights the others):

* ``arithmetic``: ``Σ w v / Σ w`` (fully compensatory);
* ``geometric``: ``exp(Σ w ln v / Σ w)`` (partly compensatory; a zero gives zero; values
  must be >= 0, so not after a plain z-score);
* ``harmonic``: ``Σ w / Σ (w / v)`` (least compensatory; a zero gives zero; values >= 0).

Groups are aggregated children first up to the root (the index); a unit with no value in a
group has no score for it. Ranks are 1 = highest score, ties broken by the unit order of the
run's ranking, units without a score last.

**Correlation audit.** Pearson correlation (pairwise complete) of every indicator's
normalised values with its parent group's score and with the index, and of every group with
its parent and the index. An indicator that correlates weakly (``< [correlation] low``) or
negatively with its group or the index carries little weight in practice whatever its
nominal weight; one above ``high`` with its group is close to redundant (Handbook step 4,
COINr's ``get_corr_flags``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import UserInputError
from .framework import Framework, Group

log = logging.getLogger(__name__)


@dataclass
class Plan:
    """The framework as arrays, for repeated evaluation (Monte Carlo)."""

    indicators: list[str]
    groups: list[str]  # post-order: children before parents, root last
    children: list[list[tuple[str, int]]]  # per group: ("i", indicator index) or ("g", group index)
    ind_weight: np.ndarray
    group_weight: np.ndarray
    ind_norm: list[str]
    group_aggr: list[str]
    direction: np.ndarray
    minmax: tuple[float, float]
    zscore: tuple[float, float]
    labels: dict = field(default_factory=dict)
    parent: dict = field(default_factory=dict)


def make_plan(fw: Framework) -> Plan:
    """Arrays of ``fw``: indicator and group order, child lists, weights, methods.

    Parameters
    ----------
    fw : Framework
        The parsed framework.

    Returns
    -------
    Plan
    """
    inds = [i.code for i in fw.indicators]
    post = fw.postorder()
    gidx = {g.code: n for n, g in enumerate(post)}
    iidx = {c: n for n, c in enumerate(inds)}
    children = []
    for g in post:
        ch = []
        for c in fw.children(g.code):
            ch.append(("g", gidx[c.code]) if isinstance(c, Group) else ("i", iidx[c.code]))
        children.append(ch)
    labels = {g.code: g.label for g in fw.groups} | {i.code: i.label for i in fw.indicators}
    parent = {g.code: g.parent for g in fw.groups} | {i.code: i.parent for i in fw.indicators}
    return Plan(
        indicators=inds,
        groups=[g.code for g in post],
        children=children,
        ind_weight=np.array([i.weight for i in fw.indicators], float),
        group_weight=np.array([g.weight for g in post], float),
        ind_norm=[fw.indicator_normalisation(i) for i in fw.indicators],
        group_aggr=[fw.group_aggregation(g) for g in post],
        direction=np.array([i.direction for i in fw.indicators], float),
        minmax=fw.minmax,
        zscore=fw.zscore,
        labels=labels,
        parent=parent,
    )


def normalise(
    x: np.ndarray,
    method: str,
    direction: float,
    *,
    minmax=(0.0, 100.0),
    zscore=(0.0, 1.0),
    name: str = "",
    warn: bool = False,
) -> np.ndarray:
    """Normalise one indicator (see the module docstring for the formulas).

    Parameters
    ----------
    x : ndarray, shape (n_units,)
        Treated values; NaN = missing (stays missing).
    method : {"minmax", "zscore", "rank", "distance"}
    direction : {1, -1}
        1: more is better; -1: less is better.
    minmax, zscore : tuple of float
        ``[lo, hi]`` of min-max and ``[mean, sd]`` of the z-score.
    name : str
        Indicator code, for messages.

    Returns
    -------
    ndarray, shape (n_units,)
        Higher is better; on the method's scale (``minmax`` range for minmax and rank, 0-100
        for distance, z-units for zscore).
    """
    x = np.asarray(x, dtype=float)
    ok = np.isfinite(x)
    out = np.full_like(x, np.nan)
    v = x[ok]
    if len(v) == 0 or np.ptp(v) == 0:
        if warn and len(v):
            log.warning(
                "indicator %s has the same value for every unit: it carries no information and is "
                "left out of the aggregation",
                name,
            )
        return out
    if method == "minmax":
        lo, hi = minmax
        lo_v, hi_v = v.min(), v.max()
        num = (v - lo_v) if direction > 0 else (hi_v - v)
        out[ok] = lo + (hi - lo) * num / (hi_v - lo_v)
    elif method == "zscore":
        m, s = zscore
        out[ok] = m + s * direction * (v - v.mean()) / v.std(ddof=1)
    elif method == "rank":
        from scipy.stats import rankdata

        lo, hi = minmax
        r = rankdata(direction * v, method="average")
        out[ok] = lo + (hi - lo) * (r - 1) / (len(v) - 1)
    elif method == "distance":
        if direction > 0:
            if v.min() < 0:
                raise UserInputError(
                    f"indicator '{name}': distance to the best needs values >= 0 (min "
                    f'{v.min():g}). Use normalisation = "minmax" for it.'
                )
            out[ok] = 100.0 * v / v.max()
        else:
            if v.min() <= 0:
                raise UserInputError(
                    f"indicator '{name}': distance to the best with direction \"-\" needs "
                    f'values > 0 (min {v.min():g}). Use normalisation = "minmax" for it.'
                )
            out[ok] = 100.0 * v.min() / v
    else:  # validated earlier
        raise ValueError(method)
    return out


def aggregate(values: np.ndarray, weights: np.ndarray, method: str, *, name: str = "") -> np.ndarray:
    """Weighted mean of the children of one group, per unit, re-weighting missing values.

    Parameters
    ----------
    values : ndarray, shape (n_units, n_children)
        Normalised children scores; NaN = missing.
    weights : ndarray, shape (n_children,)
        Positive weights (any scale: they are re-normalised per unit over the values present).
    method : {"arithmetic", "geometric", "harmonic"}
    name : str
        Group code, for messages.

    Returns
    -------
    ndarray, shape (n_units,)
        NaN where every child is missing.
    """
    present = np.isfinite(values)
    w = np.where(present, weights[None, :], 0.0)
    wsum = w.sum(axis=1)
    v = np.where(present, values, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "arithmetic":
            out = (w * v).sum(axis=1) / wsum
        else:
            if (v < 0).any():
                raise UserInputError(
                    f"group '{name}': {method} aggregation needs values >= 0, but a child has {v.min():g}. "
                    "Use minmax, rank or distance normalisation below it, or [normalisation] zscore = "
                    '[100, 10] (shifts z-scores positive), or aggregation = "arithmetic".'
                )
            if method == "geometric":
                out = np.exp((w * np.log(np.where(present, v, 1.0))).sum(axis=1) / wsum)
                out[((v == 0) & present).any(axis=1)] = 0.0
            else:
                out = wsum / (w / np.where(present, v, 1.0)).sum(axis=1)
                out[((v == 0) & present).any(axis=1)] = 0.0
    out[wsum == 0] = np.nan
    return out


def evaluate(
    plan: Plan,
    treated: np.ndarray,
    *,
    norm: str | None = None,
    aggr: str | None = None,
    ind_weight: np.ndarray | None = None,
    group_weight: np.ndarray | None = None,
    exclude: int = -1,
    warn: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Normalise and aggregate once.

    Parameters
    ----------
    plan : Plan
    treated : ndarray, shape (n_units, n_indicators)
    norm, aggr : str, optional
        Override every indicator's normalisation / every group's aggregation.
    ind_weight, group_weight : ndarray, optional
        Override the weights.
    exclude : int
        Index of an indicator to leave out (-1: none).

    Returns
    -------
    normalised : ndarray, shape (n_units, n_indicators)
    scores : ndarray, shape (n_units, n_groups)
        Group scores in ``plan.groups`` order (root last).
    """
    n, k = treated.shape
    iw = plan.ind_weight if ind_weight is None else ind_weight
    gw = plan.group_weight if group_weight is None else group_weight
    normed = np.empty((n, k))
    for j in range(k):
        normed[:, j] = normalise(
            treated[:, j],
            norm or plan.ind_norm[j],
            plan.direction[j],
            minmax=plan.minmax,
            zscore=plan.zscore,
            name=plan.indicators[j],
            warn=warn,
        )
    if exclude >= 0:
        normed[:, exclude] = np.nan
    scores = np.empty((n, len(plan.groups)))
    for g, ch in enumerate(plan.children):
        vals = np.column_stack([normed[:, i] if kind == "i" else scores[:, i] for kind, i in ch])
        w = np.array([iw[i] if kind == "i" else gw[i] for kind, i in ch])
        scores[:, g] = aggregate(vals, w, aggr or plan.group_aggr[g], name=plan.groups[g])
    return normed, scores


def ranks(score: np.ndarray) -> np.ndarray:
    """Ranks 1..n, highest score first; ties by position; NaN last.

    Parameters
    ----------
    score : ndarray, shape (..., n_units)

    Returns
    -------
    ndarray of int, same shape
    """
    score = np.asarray(score, float)
    key = np.where(np.isfinite(score), -score, np.inf)
    order = np.argsort(key, axis=-1, kind="stable")
    out = np.empty_like(order)
    np.put_along_axis(
        out,
        order,
        np.arange(1, score.shape[-1] + 1)[None, :] if score.ndim > 1 else np.arange(1, score.shape[-1] + 1),
        axis=-1,
    )
    return out


def results_table(
    plan: Plan, units: pd.DataFrame, normed: np.ndarray, scores: np.ndarray, fw: Framework
) -> pd.DataFrame:
    """Every level's score and rank per unit, the index first, in index-rank order.

    Columns: ``cluster_id``, ``name``, ``economies``, ``index_score``, ``index_rank`` (the
    root, whatever its code), then per group (framework order) ``<code>_score``,
    ``<code>_rank``, then per indicator ``<code>`` (normalised) and ``<code>_rank``.

    Parameters
    ----------
    plan : Plan
        The computation plan of the framework (:func:`make_plan`).
    units : DataFrame
        One row per cluster (``cluster_id``, ``name``, ``economies``).
    normed : ndarray of shape (n_units, n_indicators)
        Normalised indicator values.
    scores : ndarray
        Scores of every node of the framework tree, per unit.
    fw : Framework
        The parsed framework.

    Returns
    -------
    DataFrame
        ``index.csv``'s table.
    """
    df = pd.DataFrame(index=units.index)
    for c in ("name", "economies"):
        if c in units.columns:
            df[c] = units[c]
    root = len(plan.groups) - 1
    df["index_score"] = scores[:, root]
    df["index_rank"] = ranks(scores[:, root])
    for g in fw.groups:
        if not g.parent:
            continue
        j = plan.groups.index(g.code)
        df[f"{g.code}_score"] = scores[:, j]
        df[f"{g.code}_rank"] = ranks(scores[:, j])
    for j, code in enumerate(plan.indicators):
        df[code] = normed[:, j]
        df[f"{code}_rank"] = ranks(normed[:, j])
    return df


def correlations(
    plan: Plan, normed: np.ndarray, scores: np.ndarray, fw: Framework
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The correlation audit (module docstring).

    Parameters
    ----------
    plan : Plan
        The computation plan of the framework (:func:`make_plan`).
    normed : ndarray of shape (n_units, n_indicators)
        Normalised indicator values.
    scores : ndarray
        Scores of every node of the framework tree, per unit.
    fw : Framework
        The parsed framework.

    Returns
    -------
    table : DataFrame
        One row per indicator and non-root group: ``code``, ``kind``, ``parent``,
        ``r_parent``, ``r_index``, ``flag``.
    matrix : DataFrame
        Indicators (rows) × groups (columns, the index first): Pearson r.
    """
    root = plan.groups[-1]
    cols = {code: scores[:, j] for j, code in enumerate(plan.groups)}
    series = {code: normed[:, j] for j, code in enumerate(plan.indicators)} | cols

    def r(a, b):
        ok = np.isfinite(a) & np.isfinite(b)
        if ok.sum() < 3 or np.ptp(a[ok]) == 0 or np.ptp(b[ok]) == 0:
            return np.nan
        return float(np.corrcoef(a[ok], b[ok])[0, 1])

    rows = []
    for code in plan.indicators + [g.code for g in fw.groups if g.parent]:
        kind = "indicator" if code in plan.indicators else "group"
        par = plan.parent[code]
        rp, ri = r(series[code], cols[par]), r(series[code], cols[root])
        flags = []
        if np.isfinite(rp) and rp < fw.corr_low:
            flags.append(f"weak with {par} (< {fw.corr_low:g})")
        if np.isfinite(ri) and ri < fw.corr_low and par != root:
            flags.append(f"weak with the index (< {fw.corr_low:g})")
        if np.isfinite(rp) and rp > fw.corr_high and kind == "indicator" and len(fw.children(par)) > 1:
            flags.append(f"redundant with {par} (> {fw.corr_high:g})")
        rows.append(
            {"code": code, "kind": kind, "parent": par, "r_parent": rp, "r_index": ri, "flag": "; ".join(flags)}
        )
    order = [root] + [g.code for g in fw.groups if g.parent]
    matrix = pd.DataFrame({g: [r(series[i], cols[g]) for i in plan.indicators] for g in order}, index=plan.indicators)
    return pd.DataFrame(rows), matrix

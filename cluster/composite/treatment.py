"""Data treatment (Handbook step 3 and 5): missing values, then outliers, per indicator.

**Missing values.** ``[treatment] missing`` (or an indicator's own ``missing``):

* ``reweight`` (default): leave the value out; at aggregation the unit's other indicators
  in the group share the weight (weights are re-normalised over the values present), the
  "available-case" rule of the Handbook and COINr's default;
* ``mean`` / ``median``: the mean or median of the indicator over the units of the same
  group (``missing_group = "economy"``: the same first economy; ``""``: all units);
  a group with no value falls back to all units;
* ``zero``: a documented rule for counts where absence means none;
* ``min``: the worst observed value (``max`` for a negative-direction indicator), a
  conservative rule.

**Outliers.** An indicator whose sample skewness (absolute) exceeds ``skew`` (2.0) *and*
whose sample excess kurtosis exceeds ``kurtosis`` (3.5), the thresholds of the GII, the
JRC audits and COINr, is winsorised: the most extreme value on the side of the skew takes
the value of the next one, one point at a time, until the thresholds are no longer both
exceeded or ``max_winsorised`` (5) points have been changed. If that is not enough,
``fallback = "log"`` (default) undoes the winsorisation and applies a scale-free
log transform, ``log(1 + 99 (x - min) / (max - min))`` (mirrored for negative skew),
which keeps the order of the units; ``fallback = "none"`` keeps the winsorised values and
flags the indicator. Skewness and kurtosis before and after, the points changed and the
rule applied are logged per indicator (``treatment.csv``, ``index.md``). Statistics use
the bias-corrected estimators (``scipy.stats.skew``/``kurtosis`` with ``bias=False``).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy import stats

from .framework import Framework

log = logging.getLogger(__name__)


def skew_kurtosis(x: np.ndarray) -> tuple[float, float]:
    """Sample skewness and excess kurtosis (bias-corrected) of the finite values of ``x``.

    NaN when fewer than four values or no variance.

    Parameters
    ----------
    x : Series or ndarray
        One indicator's values over the units.

    Returns
    -------
    tuple of float
        Skewness and excess kurtosis (NaN when undefined).
    """
    v = x[np.isfinite(x)]
    if len(v) < 4 or np.ptp(v) == 0:
        return float("nan"), float("nan")
    return float(stats.skew(v, bias=False)), float(stats.kurtosis(v, fisher=True, bias=False))


def _flagged(x: np.ndarray, fw: Framework) -> bool:
    s, k = skew_kurtosis(x)
    return bool(np.isfinite(s) and abs(s) > fw.skew and k > fw.kurtosis)


def treat_outliers(x: np.ndarray, fw: Framework) -> tuple[np.ndarray, dict]:
    """Winsorise (or log-transform) one indicator as described in the module docstring.

    Parameters
    ----------
    x : ndarray
        Indicator values (NaN = missing, left as they are).
    fw : Framework
        Supplies ``skew``, ``kurtosis``, ``max_winsorised``, ``fallback``.

    Returns
    -------
    values : ndarray
        Treated values (a copy).
    record : dict
        ``treatment`` ("none", "winsorised", "log", "winsorised (still skewed)"),
        ``winsorised_high``, ``winsorised_low``, ``skew``/``kurtosis`` before and after.
    """
    x = np.array(x, dtype=float)
    s0, k0 = skew_kurtosis(x)
    rec = {"skew": s0, "kurtosis": k0, "treatment": "none", "winsorised_high": 0, "winsorised_low": 0}
    if not fw.winsorise or not _flagged(x, fw):
        rec.update(skew_after=s0, kurtosis_after=k0)
        return x, rec
    y = x.copy()
    finite = np.flatnonzero(np.isfinite(y))
    changed = 0
    while _flagged(y, fw) and changed < fw.max_winsorised:
        s, _ = skew_kurtosis(y)
        vals = y[finite]
        order = np.argsort(vals, kind="stable")
        if s > 0:
            top, nxt = finite[order[-1]], vals[order[-2]]
            rec["winsorised_high"] += 1
        else:
            top, nxt = finite[order[0]], vals[order[1]]
            rec["winsorised_low"] += 1
        y[top] = nxt
        changed += 1
    if _flagged(y, fw):
        if fw.fallback == "log":
            lo, hi = np.nanmin(x), np.nanmax(x)
            if s0 > 0:
                y = np.log1p(99.0 * (x - lo) / (hi - lo))
            else:
                y = -np.log1p(99.0 * (hi - x) / (hi - lo))
            rec.update(treatment="log", winsorised_high=0, winsorised_low=0)
        else:
            rec["treatment"] = "winsorised (still skewed)"
    else:
        rec["treatment"] = "winsorised"
    s1, k1 = skew_kurtosis(y)
    rec.update(skew_after=s1, kurtosis_after=k1)
    return y, rec


def impute(x: pd.Series, rule: str, direction: int, groups: pd.Series | None) -> pd.Series:
    """Fill the missing values of one indicator by ``rule`` (see the module docstring).

    Parameters
    ----------
    x : Series or ndarray
        One indicator's values over the units.
    rule : str
        The missing-value rule: ``reweight``, ``mean``, ``median``, ``zero`` or ``min``.
    direction : int
        +1 when more is better, -1 when less is.
    groups : Series, optional
        Group of each unit for group means (e.g. the economy).

    Returns
    -------
    Series
        The indicator with its missing values filled (unchanged for ``reweight``).
    """
    if rule == "reweight" or not x.isna().any():
        return x
    if rule == "zero":
        return x.fillna(0.0)
    if rule == "min":
        return x.fillna(x.min() if direction > 0 else x.max())
    overall = x.mean() if rule == "mean" else x.median()
    if groups is not None:
        by = x.groupby(groups.to_numpy()).transform(rule)
        x = x.fillna(by)
    return x.fillna(overall)


def treat(raw: pd.DataFrame, fw: Framework, units: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Missing values, then outliers, for every indicator of ``fw``.

    Parameters
    ----------
    raw : DataFrame
        Units × indicators, as from :func:`cluster.composite.indicators.raw_indicators`.
    fw : Framework
    units : DataFrame, optional
        The unit table; needed for ``missing_group = "economy"`` (column ``economy``).

    Returns
    -------
    treated : DataFrame
        Same shape; NaN only where the rule is ``reweight``.
    log_table : DataFrame
        One row per indicator: ``n``, ``n_missing``, ``missing_rule``, ``n_imputed``,
        ``skew``, ``kurtosis``, ``treatment``, ``winsorised_high``, ``winsorised_low``,
        ``skew_after``, ``kurtosis_after``.
    """
    groups = None
    if fw.missing_group == "economy" and units is not None and "economy" in units.columns:
        groups = units["economy"].reindex(raw.index)
    out = {}
    rows = []
    for ind in fw.indicators:
        x = raw[ind.code]
        rule = ind.missing or fw.missing
        n_missing = int(x.isna().sum())
        x = impute(x, rule, ind.direction, groups)
        y, rec = treat_outliers(x.to_numpy(), fw)
        out[ind.code] = y
        rows.append(
            {
                "indicator": ind.code,
                "n": int(len(x)),
                "n_missing": n_missing,
                "missing_rule": rule,
                "n_imputed": n_missing - int(np.isnan(y).sum()),
                **rec,
            }
        )
        if rec["treatment"] != "none":
            log.info(
                "indicator %s: skew %.2f, kurtosis %.2f -> %s (skew %.2f, kurtosis %.2f)",
                ind.code,
                rec["skew"],
                rec["kurtosis"],
                rec["treatment"],
                rec["skew_after"],
                rec["kurtosis_after"],
            )
    cols = [
        "indicator",
        "n",
        "n_missing",
        "missing_rule",
        "n_imputed",
        "skew",
        "kurtosis",
        "treatment",
        "winsorised_high",
        "winsorised_low",
        "skew_after",
        "kurtosis_after",
    ]
    return pd.DataFrame(out, index=raw.index), pd.DataFrame(rows, columns=cols)

"""Uncertainty and sensitivity analysis by Monte Carlo (Handbook step 7; COINr's ``get_sensitivity``).

**Uncertain inputs** (``[uncertainty]``), each one *factor*:

* ``weights``: every weight (indicators and groups) multiplied by an independent uniform
  draw in ``[1 - r, 1 + r]``, ``r = weights`` (default 0.25, i.e. ± 25 %);
* ``normalisation``: one of the listed methods, applied to every indicator, equally likely;
* ``aggregation``: one of the listed methods, applied to every group, equally likely;
* ``leave_one_out``: no indicator left out, or one of them, equally likely (its siblings
  are re-weighted).

A factor with no uncertainty (``weights = 0``, an empty list, ``leave_one_out = false``)
is not varied, so with every uncertainty set to zero each replicate is the point estimate
and every interval collapses to the nominal rank.

**Uncertainty analysis.** Two independent samples ``A`` and ``B`` of ``N = samples``
draws of the factors give ``2N`` replicates of the index; per unit, the median rank and the
5-95 % interval of its rank over them (empirical quantiles, inverted-CDF, so they are
observed ranks).

**Sensitivity analysis.** The output ``Y`` of a replicate is COINr's summary, the mean
absolute shift of the units' ranks from the nominal ranking; per unit, its rank. The
*first-order sensitivity index* of factor ``i`` is ``S_i = Var(E[Y | X_i]) / Var(Y)``, the
share of the variance of ``Y`` that factor ``i`` alone explains; the *total-order* index
``ST_i`` adds its interactions. Both are estimated with Saltelli's pick-freeze design
(Saltelli et al. 2010, *Comput. Phys. Commun.* 181, 259-270): for each factor the matrix
``A_B^i`` (``A`` with factor ``i`` taken from ``B``), ``S_i = mean(f(B) (f(A_B^i) -
f(A))) / V`` and Jansen's ``ST_i = mean((f(A) - f(A_B^i))^2) / (2V)``, ``V`` the variance
over ``A`` and ``B``. Cost: ``N (k + 2)`` evaluations for ``k`` factors. Estimates carry
Monte Carlo error of order ``1/sqrt(N)`` (small negative values mean zero).

**Leave-one-indicator-out** is also run deterministically, one indicator at a time: the
mean and largest absolute rank shift each removal causes (``leave_one_out.csv``).

Everything is drawn from one :class:`numpy.random.Generator` seeded by ``seed``: same
inputs and seed give the same numbers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._progress import bar
from ..errors import UserInputError
from .compute import Plan, evaluate, ranks

log = logging.getLogger(__name__)


@dataclass
class Uncertainty:
    """Settings of the Monte Carlo (see the module docstring)."""

    samples: int = 500
    seed: int = 0
    weights: float = 0.25
    normalisation: tuple[str, ...] = ()
    aggregation: tuple[str, ...] = ()
    leave_one_out: bool = True

    @classmethod
    def from_framework(cls, fw, **overrides) -> Uncertainty:
        kw = dict(
            samples=fw.mc_samples,
            seed=fw.mc_seed,
            weights=fw.mc_weights,
            normalisation=tuple(fw.mc_normalisation),
            aggregation=tuple(fw.mc_aggregation),
            leave_one_out=fw.mc_leave_one_out,
        )
        kw.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**kw)

    def factors(self, n_indicators: int) -> list[str]:
        out = []
        if self.weights > 0:
            out.append("weights")
        if self.normalisation:
            out.append("normalisation")
        if self.aggregation:
            out.append("aggregation")
        if self.leave_one_out and n_indicators > 1:
            out.append("leave_one_out")
        return out


def _draw(rng: np.random.Generator, unc: Uncertainty, factors: list[str], n: int, plan: Plan) -> dict:
    k_i, k_g = len(plan.indicators), len(plan.groups)
    d = {}
    if "weights" in factors:
        d["weights"] = rng.uniform(1 - unc.weights, 1 + unc.weights, size=(n, k_i + k_g))
    if "normalisation" in factors:
        d["normalisation"] = rng.integers(0, len(unc.normalisation), size=n)
    if "aggregation" in factors:
        d["aggregation"] = rng.integers(0, len(unc.aggregation), size=n)
    if "leave_one_out" in factors:
        d["leave_one_out"] = rng.integers(-1, k_i, size=n)  # -1: none left out
    return d


def _run(plan: Plan, treated: np.ndarray, unc: Uncertainty, draws: dict, j: int) -> np.ndarray:
    """Index ranks of replicate ``j`` of ``draws``."""
    k_i = len(plan.indicators)
    iw = gw = None
    if "weights" in draws:
        f = draws["weights"][j]
        iw, gw = plan.ind_weight * f[:k_i], plan.group_weight * f[k_i:]
    norm = unc.normalisation[draws["normalisation"][j]] if "normalisation" in draws else None
    aggr = unc.aggregation[draws["aggregation"][j]] if "aggregation" in draws else None
    exclude = int(draws["leave_one_out"][j]) if "leave_one_out" in draws else -1
    try:
        _, scores = evaluate(plan, treated, norm=norm, aggr=aggr, ind_weight=iw, group_weight=gw, exclude=exclude)
    except UserInputError as exc:
        raise UserInputError(
            f"Monte Carlo replicate with normalisation={norm or 'nominal'}, "
            f"aggregation={aggr or 'nominal'}: {exc} Or remove that alternative from "
            "[uncertainty]."
        ) from None
    return ranks(scores[:, -1])


def _take(draws: dict, factor: str, other: dict) -> dict:
    mixed = dict(draws)
    mixed[factor] = other[factor]
    return mixed


def monte_carlo(plan: Plan, treated: np.ndarray, unc: Uncertainty, unit_ids) -> dict:
    """Uncertainty and sensitivity analysis (module docstring).

    Parameters
    ----------
    plan : Plan
    treated : ndarray, shape (n_units, n_indicators)
        Treated indicator values (treatment is not varied).
    unc : Uncertainty
    unit_ids : sequence of str
        Unit ids in row order.

    Returns
    -------
    dict
        ``ranks`` (DataFrame: ``rank_nominal``, ``rank_median``, ``rank_p05``, ``rank_p95``,
        ``s1_<factor>`` per unit), ``sensitivity`` (DataFrame: ``factor``, ``first_order``,
        ``total_order``, ``mean_unit_first_order``), ``replicates`` (int), ``factors``.
    """
    if unc.samples <= 0:
        raise UserInputError("[uncertainty] samples must be > 0 for the Monte Carlo (or skip it with --samples 0).")
    n_units = treated.shape[0]
    nominal = ranks(evaluate(plan, treated)[1][:, -1])
    factors = unc.factors(len(plan.indicators))
    N = unc.samples
    rng = np.random.default_rng(unc.seed)
    A, B = _draw(rng, unc, factors, N, plan), _draw(rng, unc, factors, N, plan)
    shown = bar(desc="Monte Carlo", total=N * (len(factors) + 2) if factors else 1, unit="evaluation")

    def run(draws, j):
        shown.update()
        return _run(plan, treated, unc, draws, j)

    if factors:
        RA = np.stack([run(A, j) for j in range(N)])
        RB = np.stack([run(B, j) for j in range(N)])
    else:  # no uncertainty: every replicate is the point estimate
        RA = RB = np.tile(nominal, (N, 1))
    R = np.concatenate([RA, RB])
    out = pd.DataFrame(index=pd.Index(list(unit_ids), name="cluster_id"))
    out["rank_nominal"] = nominal
    out["rank_median"] = np.quantile(R, 0.5, axis=0, method="inverted_cdf").astype(int)
    out["rank_p05"] = np.quantile(R, 0.05, axis=0, method="inverted_cdf").astype(int)
    out["rank_p95"] = np.quantile(R, 0.95, axis=0, method="inverted_cdf").astype(int)

    def shift(Rm):
        return np.abs(Rm - nominal[None, :]).mean(axis=1)

    yA, yB = shift(RA), shift(RB)
    V = np.var(np.concatenate([yA, yB]))
    VU = np.var(R, axis=0)
    rows = []
    for f in factors:
        RAB = np.stack([run(_take(A, f, B), j) for j in range(N)])
        yAB = shift(RAB)
        s1 = float(np.mean(yB * (yAB - yA)) / V) if V > 0 else np.nan
        st = float(np.mean((yA - yAB) ** 2) / (2 * V)) if V > 0 else np.nan
        with np.errstate(divide="ignore", invalid="ignore"):
            s1u = np.where(VU > 0, np.mean(RB * (RAB - RA), axis=0) / VU, np.nan)
        out[f"s1_{f}"] = s1u
        # Units weighted by their rank variance: the factor's share of all rank movement.
        mean_u = float(np.nansum(np.mean(RB * (RAB - RA), axis=0)) / VU.sum()) if VU.sum() > 0 else np.nan
        rows.append({"factor": f, "first_order": s1, "total_order": st, "mean_unit_first_order": mean_u})
    shown.close()
    sens = pd.DataFrame(rows, columns=["factor", "first_order", "total_order", "mean_unit_first_order"])
    log.info(
        "Monte Carlo: %d replicates of %d unit(s) over %s; %d evaluations for the sensitivity indices",
        2 * N,
        n_units,
        ", ".join(factors) or "no uncertain input",
        N * len(factors),
    )
    return {
        "ranks": out,
        "sensitivity": sens,
        "replicates": 2 * N,
        "factors": factors,
        "mean_abs_shift": float(np.concatenate([yA, yB]).mean()),
    }


def leave_one_out(plan: Plan, treated: np.ndarray, unit_ids) -> pd.DataFrame:
    """Index ranks without each indicator in turn, compared with the nominal ranks.

    Parameters
    ----------
    plan : Plan
        The computation plan of the framework (:func:`make_plan`).
    treated : ndarray of shape (n_units, n_indicators)
        Indicator values after data treatment.
    unit_ids : sequence of str
        Cluster id of each unit.

    Returns
    -------
    DataFrame
        ``indicator``, ``mean_abs_rank_shift``, ``max_abs_rank_shift``, ``units_moved``,
        ``most_moved`` (unit id with the largest shift).
    """
    ids = list(unit_ids)
    nominal = ranks(evaluate(plan, treated)[1][:, -1])
    rows = []
    for j, code in enumerate(plan.indicators):
        r = ranks(evaluate(plan, treated, exclude=j)[1][:, -1])
        d = np.abs(r - nominal)
        rows.append(
            {
                "indicator": code,
                "mean_abs_rank_shift": float(d.mean()),
                "max_abs_rank_shift": int(d.max()),
                "units_moved": int((d > 0).sum()),
                "most_moved": ids[int(np.argmax(d))] if d.max() > 0 else "",
            }
        )
    return pd.DataFrame(rows)

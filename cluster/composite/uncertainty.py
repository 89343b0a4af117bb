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
``ST_i`` adds its interactions. The design is Saltelli's pick-freeze (Saltelli et al. 2010,
*Comput. Phys. Commun.* 181, 259-270): for each factor the matrix ``A_B^i`` (``A`` with
factor ``i`` taken from ``B``); cost ``N (k + 2)`` evaluations for ``k`` factors. The
estimators are SALib's (``SALib.analyze.sobol.analyze``, Herman & Usher 2017, *JOSS* 2(9),
97): Saltelli 2010's ``S_i = mean(f(B) (f(A_B^i) - f(A))) / V`` and Jansen's ``ST_i =
mean((f(A) - f(A_B^i))^2) / (2V)``, with **bootstrap confidence intervals**: SALib resamples
the ``N`` rows ``BOOTSTRAP_RESAMPLES`` times and gives the half-width ``1.96 sd`` of the
resampled estimates; the interval is the estimate ± that (95 %).

A Sobol' index lies in ``[0, 1]``; an estimate outside it (``-0.02``, ``1.03``) is sampling
error. The table keeps the raw estimate and its interval and shows the estimate clipped to
``[0, 1]`` (``first_order_clipped``, ``total_order_clipped``, ``outside_unit_interval``).

**Convergence.** Starting from ``samples``, ``N`` is doubled (new draws, earlier replicates
kept) until every interval of ``S_i`` and ``ST_i`` is at most ``tolerance`` wide (default
``0.1``, i.e. ± 0.05: two factors whose indices differ by more than 0.1 are told apart) or
``N`` reaches ``max_samples`` (default 12,800); ``convergence`` records ``N`` and the widest
interval at each step, and whether the tolerance was met. The rank intervals use every
replicate drawn.

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
from .framework import MC_MAX_SAMPLES, MC_TOLERANCE

#: Bootstrap resamples of SALib's confidence intervals.
BOOTSTRAP_RESAMPLES = 500
#: Confidence level of the intervals.
CONFIDENCE = 0.95

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
    tolerance: float = MC_TOLERANCE
    max_samples: int = MC_MAX_SAMPLES

    @classmethod
    def from_framework(cls, fw, **overrides) -> Uncertainty:
        kw = dict(
            samples=fw.mc_samples,
            seed=fw.mc_seed,
            weights=fw.mc_weights,
            normalisation=tuple(fw.mc_normalisation),
            aggregation=tuple(fw.mc_aggregation),
            leave_one_out=fw.mc_leave_one_out,
            tolerance=fw.mc_tolerance,
            max_samples=fw.mc_max_samples,
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


def sobol_indices(yA: np.ndarray, yB: np.ndarray, yAB: np.ndarray, factors: list[str], seed: int) -> pd.DataFrame:
    """First- and total-order Sobol' indices with bootstrap intervals (SALib's estimators).

    Parameters
    ----------
    yA, yB : ndarray, shape (N,)
        The output on the rows of ``A`` and ``B``.
    yAB : ndarray, shape (N, k)
        The output on ``A_B^i`` for each factor ``i``.
    factors : list of str
        Factor names (``k``).
    seed : int
        Seed of the bootstrap.

    Returns
    -------
    DataFrame
        ``factor``, ``first_order`` with ``first_order_low``/``_high`` (95 % interval),
        ``total_order`` with ``total_order_low``/``_high``, the estimates clipped to
        ``[0, 1]`` (``first_order_clipped``, ``total_order_clipped``) and
        ``outside_unit_interval``; NaN when ``Y`` does not vary.
    """
    cols = ["factor", "first_order", "first_order_low", "first_order_high", "first_order_clipped", "total_order",
            "total_order_low", "total_order_high", "total_order_clipped", "outside_unit_interval"]
    k = len(factors)
    if k == 0:
        return pd.DataFrame(columns=cols)
    Y = np.column_stack([yA, yAB, yB])
    if np.ptp(Y) <= np.finfo(float).eps * max(1.0, float(np.abs(Y).max())):
        nan = np.full(k, np.nan)
        s1 = s1c = st = stc = nan
    else:
        from SALib.analyze import sobol

        problem = {"num_vars": k, "names": list(factors), "bounds": [[0.0, 1.0]] * k}
        # SALib draws its resamples from the global generator when seed is 0: give it >= 1.
        S = sobol.analyze(problem, Y.ravel(), calc_second_order=False, num_resamples=BOOTSTRAP_RESAMPLES,
                          conf_level=CONFIDENCE, seed=int(seed) + 1)
        s1, s1c, st, stc = (np.asarray(S[key], dtype=float) for key in ("S1", "S1_conf", "ST", "ST_conf"))
    out = pd.DataFrame({"factor": list(factors), "first_order": s1, "first_order_low": s1 - s1c,
                        "first_order_high": s1 + s1c, "first_order_clipped": np.clip(s1, 0.0, 1.0),
                        "total_order": st, "total_order_low": st - stc, "total_order_high": st + stc,
                        "total_order_clipped": np.clip(st, 0.0, 1.0)})
    out["outside_unit_interval"] = (s1 < 0) | (s1 > 1) | (st < 0) | (st > 1)
    return out[cols]


def _widest(sens: pd.DataFrame) -> float:
    """The widest interval of the table (0 without factors, inf when undefined)."""
    if sens.empty:
        return 0.0
    w = np.concatenate([(sens["first_order_high"] - sens["first_order_low"]).to_numpy(dtype=float),
                        (sens["total_order_high"] - sens["total_order_low"]).to_numpy(dtype=float)])
    return float(np.max(w)) if np.isfinite(w).all() else 0.0 if np.isnan(w).all() else float("inf")


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
        ``s1_<factor>`` per unit), ``sensitivity`` (DataFrame: see :func:`sobol_indices`,
        and ``mean_unit_first_order``), ``replicates`` (int), ``factors``, ``samples``
        (``N`` reached), ``convergence`` (list of ``{"samples", "widest_interval"}``),
        ``converged`` (bool), ``mean_abs_shift``.
    """
    if unc.samples <= 0:
        raise UserInputError("[uncertainty] samples must be > 0 for the Monte Carlo (or skip it with --samples 0).")
    n_units = treated.shape[0]
    nominal = ranks(evaluate(plan, treated)[1][:, -1])
    factors = unc.factors(len(plan.indicators))
    rng = np.random.default_rng(unc.seed)

    def block(n):
        A, B = _draw(rng, unc, factors, n, plan), _draw(rng, unc, factors, n, plan)
        if not factors:  # no uncertainty: every replicate is the point estimate
            return np.tile(nominal, (n, 1)), np.tile(nominal, (n, 1)), []
        with bar(desc="Monte Carlo", total=n * (len(factors) + 2), unit="evaluation") as shown:
            def run(draws, j):
                shown.update()
                return _run(plan, treated, unc, draws, j)

            RA = np.stack([run(A, j) for j in range(n)])
            RB = np.stack([run(B, j) for j in range(n)])
            RAB = [np.stack([run(_take(A, f, B), j) for j in range(n)]) for f in factors]
        return RA, RB, RAB

    def shift(Rm):
        return np.abs(Rm - nominal[None, :]).mean(axis=1)

    N, new = 0, unc.samples
    RA = RB = None
    RAB: list = []
    history = []
    while True:
        a, b, ab = block(new)
        RA = a if RA is None else np.concatenate([RA, a])
        RB = b if RB is None else np.concatenate([RB, b])
        RAB = ab if not RAB else [np.concatenate([x, y]) for x, y in zip(RAB, ab)]
        N += new
        yA, yB = shift(RA), shift(RB)
        yAB = np.column_stack([shift(r) for r in RAB]) if RAB else np.zeros((N, 0))
        sens = sobol_indices(yA, yB, yAB, factors, unc.seed)
        widest = _widest(sens)
        history.append({"samples": N, "widest_interval": widest})
        if widest <= unc.tolerance or N >= max(unc.max_samples, unc.samples):
            break
        new = min(N, max(unc.max_samples, unc.samples) - N)  # double N
    converged = bool(history[-1]["widest_interval"] <= unc.tolerance)
    if not converged:
        log.warning("sensitivity indices: the widest 95 %% interval is %.3f after N = %d samples, above the "
                    "tolerance %g ([uncertainty] tolerance, max_samples)", history[-1]["widest_interval"], N,
                    unc.tolerance)
    R = np.concatenate([RA, RB])
    out = pd.DataFrame(index=pd.Index(list(unit_ids), name="cluster_id"))
    out["rank_nominal"] = nominal
    out["rank_median"] = np.quantile(R, 0.5, axis=0, method="inverted_cdf").astype(int)
    out["rank_p05"] = np.quantile(R, 0.05, axis=0, method="inverted_cdf").astype(int)
    out["rank_p95"] = np.quantile(R, 0.95, axis=0, method="inverted_cdf").astype(int)
    VU = np.var(R, axis=0)
    mean_units = []
    for f, R_AB in zip(factors, RAB):
        with np.errstate(divide="ignore", invalid="ignore"):
            s1u = np.where(VU > 0, np.mean(RB * (R_AB - RA), axis=0) / VU, np.nan)
        out[f"s1_{f}"] = s1u
        # Units weighted by their rank variance: the factor's share of all rank movement.
        mean_units.append(float(np.nansum(np.mean(RB * (R_AB - RA), axis=0)) / VU.sum()) if VU.sum() > 0 else np.nan)
    sens["mean_unit_first_order"] = mean_units if factors else []
    log.info(
        "Monte Carlo: %d replicates of %d unit(s) over %s; %d evaluations for the sensitivity indices "
        "(N = %d, widest 95 %% interval %.3f)",
        2 * N,
        n_units,
        ", ".join(factors) or "no uncertain input",
        N * len(factors),
        N,
        history[-1]["widest_interval"],
    )
    return {
        "ranks": out,
        "sensitivity": sens,
        "replicates": 2 * N,
        "factors": factors,
        "samples": N,
        "convergence": history,
        "converged": converged,
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

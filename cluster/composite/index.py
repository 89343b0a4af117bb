"""Build a composite index on the clusters: the Handbook's steps in order.

1. *Theoretical framework*: the TOML framework (:mod:`cluster.composite.framework`).
2. *Data selection*: the unit table from the run's outputs and user tables, indicators as
   ``column / denominator × scale`` (:mod:`cluster.composite.indicators`).
3. *Data treatment*: missing values and outliers (:mod:`cluster.composite.treatment`).
4. *Multivariate analysis*: the correlation audit (:func:`cluster.composite.compute.correlations`).
5. *Normalisation*, 6. *weighting and aggregation* (:mod:`cluster.composite.compute`).
7. *Uncertainty and sensitivity analysis* (:mod:`cluster.composite.uncertainty`).

:func:`compute_index` does all of it in memory on a unit table; :func:`run_index` reads a
run's output directory (or takes a clusters GeoDataFrame) and writes the results
(:mod:`cluster.composite.outputs`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import UserInputError
from .compute import correlations, evaluate, make_plan, results_table
from .framework import Framework, load_framework, with_overrides
from .indicators import check_columns, load_run, raw_indicators, unit_table
from .treatment import treat
from .uncertainty import Uncertainty, leave_one_out, monte_carlo

log = logging.getLogger(__name__)


@dataclass
class IndexResult:
    """Everything :func:`compute_index` produces.

    Attributes
    ----------
    framework : Framework
        As applied (optional indicators whose column was absent removed).
    table : DataFrame
        Per unit (index ``cluster_id``, rank order): every level's score and rank, the
        normalised indicators and their ranks, the raw values (``<code>_raw``) and, when the
        Monte Carlo ran, ``rank_median``, ``rank_p05``, ``rank_p95``.
    treatment : DataFrame
        The data-treatment log, one row per indicator.
    corr_table, corr_matrix : DataFrame
        The correlation audit.
    sensitivity : DataFrame or None
        First- and total-order sensitivity indices per uncertain factor.
    leave_one_out : DataFrame or None
    dropped : list of str
        Optional indicators left out, with the reason.
    """

    framework: Framework
    table: pd.DataFrame
    treatment: pd.DataFrame
    corr_table: pd.DataFrame
    corr_matrix: pd.DataFrame
    units: pd.DataFrame
    sensitivity: pd.DataFrame | None = None
    leave_one_out: pd.DataFrame | None = None
    uncertainty: Uncertainty | None = None
    mc: dict = field(default_factory=dict)
    dropped: list = field(default_factory=list)
    info: dict = field(default_factory=dict)


def compute_index(
    framework: Framework, units: pd.DataFrame, *, uncertainty: Uncertainty | None = None, monte_carlo_on: bool = True
) -> IndexResult:
    """Compute the index, its audit and (optionally) its uncertainty on a unit table.

    Parameters
    ----------
    framework : Framework
    units : DataFrame
        One row per unit, indexed by unit id (``cluster_id``), with every column the
        framework's indicators name (see :func:`cluster.composite.indicators.unit_table`).
    uncertainty : Uncertainty, optional
        Monte Carlo settings; default from the framework's ``[uncertainty]``.
    monte_carlo_on : bool
        False: no Monte Carlo and no leave-one-out (point estimate and audit only).

    Returns
    -------
    IndexResult
    """
    fw, dropped = check_columns(framework, units)
    raw = raw_indicators(fw, units)
    treated, treat_log = treat(raw, fw, units)
    plan = make_plan(fw)
    X = treated.to_numpy(dtype=float)
    normed, scores = evaluate(plan, X, warn=True)
    table = results_table(plan, units, normed, scores, fw)
    for code in plan.indicators:
        table[f"{code}_raw"] = raw[code]
    corr_table, corr_matrix = correlations(plan, normed, scores, fw)
    res = IndexResult(
        framework=fw,
        table=table,
        treatment=treat_log,
        corr_table=corr_table,
        corr_matrix=corr_matrix,
        units=units,
        dropped=dropped,
    )
    unc = uncertainty or Uncertainty.from_framework(fw)
    if monte_carlo_on and unc.samples > 0:
        mc = monte_carlo(plan, X, unc, units.index)
        r = mc["ranks"]
        at = table.columns.get_loc("index_rank") + 1
        for n, c in enumerate(["rank_median", "rank_p05", "rank_p95"]):
            table.insert(at + n, c, r[c].to_numpy())
        for c in r.columns:
            if c.startswith("s1_"):
                table[c] = r[c].to_numpy()
        res.sensitivity, res.mc, res.uncertainty = mc["sensitivity"], mc, unc
        res.leave_one_out = leave_one_out(plan, X, units.index) if len(plan.indicators) > 1 else None
    res.table = table.sort_values("index_rank", kind="stable")
    return res


def synthetic_notice(run_synthetic: bool, tables: list) -> str | None:
    """The line every output of a synthetic index starts with (None for a real one).

    Parameters
    ----------
    run_synthetic : bool
        The clusters come from the synthetic demo world.
    tables : list of str
        User tables marked synthetic.

    Returns
    -------
    str or None
        The notice.
    """
    if not run_synthetic and not tables:
        return None
    parts = []
    if run_synthetic:
        parts.append("the clusters are the synthetic demo world")
    if tables:
        parts.append(f"the tables {', '.join(tables)} are synthetic demo tables of invented institutions, "
                     "companies and airports")
    mix = ", mixed with real clusters: a demonstration, not a result" if tables and not run_synthetic else ""
    return "SYNTHETIC DATA: " + "; ".join(parts) + mix + "."


def run_index(
    source,
    framework: str | Path | Framework,
    out: str | Path | None = None,
    *,
    tables: dict | None = None,
    compare: str | Path | None = None,
    samples: int | None = None,
    seed: int | None = None,
    max_samples: int | None = None,
    monte_carlo_on: bool = True,
    top_n: int | None = None,
    allow_synthetic: bool = False,
) -> IndexResult:
    """Build a composite index from a run and, with ``out``, write its outputs.

    A user table marked synthetic (the demo tables: :func:`cluster.provenance.table_is_synthetic`)
    is not combined with the clusters of a real run unless ``allow_synthetic``; the index is
    then synthetic, and every output says so in its first lines.

    Parameters
    ----------
    source : str, Path or GeoDataFrame
        A ``cluster run`` output directory, or a clusters GeoDataFrame in memory (boundaries
        in EPSG:4326 with ``cluster_id`` and the ranking columns).
    framework : str, Path or Framework
        A framework TOML file, a shipped name (``"gihi"``, ``"ecnu"``) or a loaded framework.
    out : str or Path, optional
        Output directory, written atomically (see :mod:`cluster.composite.outputs`).
    tables : dict, optional
        ``table name -> file`` for the framework's ``[[table]]`` entries.
    compare : str or Path, optional
        CSV keyed by ``cluster_id`` with growth columns between two editions.
    samples, seed, max_samples : int, optional
        Override ``[uncertainty] samples``, ``seed`` and ``max_samples`` (the convergence
        check doubles the samples up to it; equal to ``samples``: no doubling).
    monte_carlo_on : bool
        False: skip the uncertainty and sensitivity analysis.
    top_n : int, optional
        Override ``[units] top_n`` (0: every cluster).
    allow_synthetic : bool, default False
        Combine synthetic tables with a real run anyway (a demonstration).

    Returns
    -------
    IndexResult

    Raises
    ------
    UserInputError
        A synthetic table with a real run, without ``allow_synthetic``.
    """
    fw = framework if isinstance(framework, Framework) else load_framework(framework)
    fw = with_overrides(fw, samples=samples, seed=seed, top_n=top_n)  # the file's rules, checked
    if isinstance(source, (str, Path)):
        run = load_run(source)
    else:
        run = {"ranking": None, "clusters": source, "sites": None, "info": {}, "path": "<memory>"}
    if out is not None:
        from cluster._atomic import prepare_output_dir

        read = [p for p in [source if isinstance(source, (str, Path)) else None, *(tables or {}).values(), compare]
                if p is not None and "://" not in str(p)]
        prepare_output_dir(Path(out), inputs=read, walked=False)  # fail before the work, not after it
    units = unit_table(fw, run["clusters"], run["ranking"], run["sites"], tables=tables, compare=compare)
    run_synthetic = bool(run["info"].get("synthetic", False))
    if "synthetic" in units.columns:
        run_synthetic = run_synthetic or bool(np.asarray(units["synthetic"].fillna(False), bool).any())
    fake = list(units.attrs.get("synthetic_tables", []))
    if fake and not run_synthetic and not allow_synthetic:
        files = "; ".join(f"{n} = {units.attrs['tables'][n]}" for n in fake)
        message = (f"Table(s) {files} are synthetic (their provenance sidecar says so) and the clusters of "
                   f"run {run['path']} are real: the index would mix invented data into real results. Give "
                   "real tables, leave these out (their indicators are optional), or pass --allow-synthetic "
                   "for a demonstration (every output then says it is synthetic).")
        raise UserInputError(message)
    unc = Uncertainty.from_framework(fw, max_samples=max_samples)  # samples and seed: with_overrides
    res = compute_index(fw, units, uncertainty=unc, monte_carlo_on=monte_carlo_on)
    res.info = {
        "run": run["path"],
        "run_info": run["info"],
        "synthetic": run_synthetic or bool(fake),
        "synthetic_run": run_synthetic,
        "synthetic_tables": fake,
        "notice": synthetic_notice(run_synthetic, fake),
        "tables": units.attrs.get("tables", {}),
    }
    if out is not None:
        from .outputs import write_index

        write_index(res, out)
    top = res.table.head(5)
    log.info(
        "top of %s: %s",
        fw.name,
        "; ".join(
            f"{int(r.index_rank)}. {getattr(r, 'name', cid)} {r.index_score:.2f}"
            for cid, r in zip(top.index, top.itertuples())
        ),
    )
    return res

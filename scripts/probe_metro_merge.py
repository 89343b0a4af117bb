"""Probe (issue 24): can two-level DBSCAN keep Washington with Baltimore and Tel Aviv with
Jerusalem without joining New York with Philadelphia?

A measurement, not a pipeline feature. Two-level DBSCAN (``split_scale`` S) replaces a
cluster at the threshold by its parts at S times the threshold (dense clusters and
remainder groups, :func:`cluster.stages.clustering._split`). The probe adds one rule after
the split, in the spirit of cortext/geoclust's merging of nearby initial clusters
(CHAMELEON-like): parts of one first-level cluster are joined again, by complete linkage
(so no chain of parts spans more than the distance), when the distance between their
points is below ``merge_km``. A part's point is its activity-weighted centre
(``--linkage centroid``) or its heaviest site (``--linkage anchor``). It prints, per
edition and setting, the pairs of reference cities merged / split / missing
(:mod:`cluster.tuning.consistency`), as ``cluster sweep`` does.

Run (about a minute for the default grid)::

    PYTHONPATH=. python scripts/probe_metro_merge.py \\
        --methods dbscan/2.5,dbscan/3,dbscan/3.5,dbscan/4 --eps-km 14,15,16,17 --merge-km 0,50,60,70

The findings are in the comments of data/real/patentsview.toml.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from cluster.config import load_config
from cluster.engine.dbscan import dbscan_sphere
from cluster.engine.geo import unit_vectors
from cluster.pipeline import load_records
from cluster.stages.clustering import cluster_metrics, overlay
from cluster.stages.membership import Membership, method_config, noise_within, quiet_stages, scaled_config
from cluster.stages.sites import prepare_sites
from cluster.tuning.consistency import consistency_table, load_reference

ROOT = Path(__file__).resolve().parents[1]
EARTH_RADIUS_KM = 6371.0088


def merge_parts(lat, lon, weight, first_level, parts, merge_km, linkage="centroid"):
    """Join parts of one first-level cluster whose points are within ``merge_km``
    (complete linkage, closest pair first, ties by label: deterministic)."""
    if merge_km <= 0:
        return parts
    xyz = unit_vectors(lat, lon)
    out = parts.copy()
    for c in np.unique(first_level[out >= 0]):
        labels = [int(p) for p in np.unique(out[(first_level == c) & (out >= 0)])]
        if len(labels) < 2:
            continue
        point = {}
        for p in labels:
            i = np.flatnonzero(out == p)
            if linkage == "anchor":
                point[p] = xyz[i[np.lexsort((i, -weight[i]))[0]]]
            else:
                v = (xyz[i] * weight[i, None]).sum(0)
                point[p] = v / np.linalg.norm(v)
        km = {(a, b): 2 * EARTH_RADIUS_KM * np.arcsin(min(np.linalg.norm(point[a] - point[b]) / 2, 1.0))
              for a in labels for b in labels}
        groups = {p: [p] for p in labels}
        while True:
            best = None
            keys = sorted(groups)
            for i, a in enumerate(keys):
                for b in keys[i + 1:]:
                    d = max(km[(x, y)] for x in groups[a] for y in groups[b])
                    if d < merge_km and (best is None or d < best[0]):
                        best = (d, a, b)
            if best is None:
                break
            groups[best[1]] += groups.pop(best[2])
        for a, members in groups.items():
            out[np.isin(out, members)] = a
    return out


def membership(sites, totals, config, method, eps_km, merge_km, linkage):
    """The clusters of one setting (site memberships only, as the sweep computes them)."""
    cfg = scaled_config(method_config(config, method), totals, eps_km, 1.0)
    with quiet_stages():
        clustered, thresholds = cluster_metrics(sites, cfg, totals)
    if merge_km > 0 and cfg.split_scale > 1:
        (metric, threshold), = thresholds.items()  # the probe takes one metric
        lat, lon, w = (sites[c].to_numpy() for c in ("lat", "lon", "weight"))
        first, _ = dbscan_sphere(lat, lon, w, eps_km=eps_km, min_weight=threshold)
        clustered["metric_cluster"] = merge_parts(lat, lon, w, first, clustered["metric_cluster"].to_numpy(),
                                                  merge_km, linkage)
    component = overlay(clustered, eps_km)
    n = int(component.max()) + 1 if len(component) else 0
    inside = noise_within(sites, component, eps_km / 2.0)
    return Membership(component=component, inside=inside, ranking=pd.DataFrame(), rank=np.zeros(n, np.int64),
                      top=np.zeros(n, bool), thresholds=thresholds)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "data/real/patentsview.toml"))
    ap.add_argument("--input", action="append", default=None, help="default: the 2013 and 2000 editions")
    ap.add_argument("--methods", default="dbscan/3")
    ap.add_argument("--eps-km", default="15")
    ap.add_argument("--merge-km", default="0,60")
    ap.add_argument("--linkage", choices=("centroid", "anchor"), default="centroid")
    ap.add_argument("--selection", choices=("eom", "leaf"), default=None, help="HDBSCAN* selection")
    ap.add_argument("--reference", default=None, help="default: the built-in GII metros")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    inputs = args.input or [str(ROOT / f"data/real/patentsview_inventor_locations_{y}.csv") for y in (2013, 2000)]
    reference = load_reference(args.reference)
    config = load_config(args.config, {})
    if args.selection:
        config = replace(config, selection=args.selection)
    print("edition  method       eps_km  merge_km  merged/split/missing  merged pairs | split pairs")
    for path in inputs:
        records, _, _ = load_records([path], config)
        prepared = prepare_sites(records, config)
        sites, totals = prepared.sites, prepared.totals
        for merge_km in (float(x) for x in args.merge_km.split(",")):
            memberships = {(m, float(e), merge_km): membership(sites, totals, config, m, float(e), merge_km,
                                                               args.linkage)
                           for m in args.methods.split(",") for e in args.eps_km.split(",")}
            table = consistency_table(sites, memberships, reference)
            for _, r in table.iterrows():
                print(f"{Path(path).stem[-4:]:8s} {r['method']:12s} {r['eps_km']:6g}  {merge_km:8g}  "
                      f"{r['n_merged']:3d} / {r['n_split']} / {r['n_missing']:2d}            "
                      f"{r['merged'] or '-'} | {r['split'] or '-'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Cluster profiles: what each cluster is made of (main fields and institutions).

The GII reports beside each cluster its main technology field, its main scientific
subject, its top patent applicant and its top publishing institution. Here the same
comes from the optional record columns ``field`` and ``institution``:

* every record gets its fractional weight (its own ``weight``, else ``1/n`` for a
  document at n rows), so a document counts once and a co-invented patent is split
  between its locations as in the cluster counts; the engine counts rows per cluster
  and value from the records its one pass kept (:func:`cluster.ingest.profile_counts`)
  and :func:`cluster.stages.sites.cluster_values` sums them, so records never reach
  this stage;
* a value's weight at a site belongs to the cluster whose boundary holds the site (the
  cluster :mod:`cluster.stages.boundaries` put it in), so the profile adds up to the
  cluster's count of the metric;
* per cluster, metric and kind (``field``, ``institution``), each value's weight and its
  ``share``: the weight divided by the cluster's count of that metric (records with an
  empty value count in the denominator, so shares of a partly labelled cluster add up
  to less than 1 and are never inflated);
* values are ordered by weight (ties by value), ``position`` 1 is the top one.

A kind is profiled when any record has a value in its column; a metric without values
gets empty ``top_*`` columns.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from cluster.ingest import PROFILE_COLUMNS
from cluster.stages.sites import codes_as_text, fold_codes, positions_in, run_starts

KINDS = PROFILE_COLUMNS


def cluster_profiles(values: pd.DataFrame | None, sites: pd.DataFrame, cluster_ids: Sequence[str],
                     metrics: Sequence[str], kinds: Sequence[str] | None = None) -> pd.DataFrame | None:
    """Weight and share of every field and institution in every cluster, per metric.

    Parameters
    ----------
    values : DataFrame or None
        Weight of each value per cluster: ``cluster`` (position in ``cluster_ids``),
        ``metric, kind, value, weight`` (:func:`cluster.stages.sites.cluster_values`);
        None when the records have no ``field`` or ``institution``.
    sites : DataFrame
        The run's sites with ``weight`` and ``cluster_id`` (None outside every cluster):
        the denominators.
    cluster_ids : sequence of str
        Clusters in the order of the output (rank order).
    metrics : sequence of str
        Metrics in output order.
    kinds : sequence of str, optional
        Kinds to profile; default those of :data:`KINDS` with a value in ``values``.

    Returns
    -------
    DataFrame or None
        None when no kind has a value. Else long form, one row per (cluster, metric,
        kind, value): ``cluster_id``, ``metric``, ``kind``, ``position`` (1 =
        heaviest), ``value``, ``weight`` (fractional-count units) and ``share``
        (fraction of the cluster's count of the metric), ordered by cluster (as
        ``cluster_ids``), metric, kind, position; ``attrs["kinds"]`` lists the kinds.
    """
    columns = ["cluster_id", "metric", "kind", "position", "value", "weight", "share"]
    if values is None:
        return None
    # Each text column hashed once: its codes give the positions, its distinct values the text.
    kind_codes, kind_names = pd.factorize(values["kind"])
    present = set(kind_names)
    kinds = [k for k in (KINDS if kinds is None else kinds) if k in present] if len(values) else \
        [k for k in (KINDS if kinds is None else kinds)]
    if not kinds:
        return None
    if not len(cluster_ids) or values.empty:
        empty = pd.DataFrame(columns=columns)
        empty.attrs["kinds"] = kinds
        return empty
    # The cluster's count of the metric: every site inside, its values labelled or not.
    inside = np.flatnonzero(sites["cluster_id"].notna().to_numpy())
    total = pd.DataFrame({"c": positions_in(sites["cluster_id"].take(inside), cluster_ids),
                          "_m": positions_in(sites["metric"].take(inside), metrics),
                          "w": sites["weight"].to_numpy(dtype=float)[inside]}).groupby(["c", "_m"])["w"].sum()
    k_all = pd.Index(kinds).get_indexer(kind_names)
    rows = np.flatnonzero(k_all[kind_codes] >= 0) if (k_all < 0).any() else None  # None: every row

    def kept(a):
        return a if rows is None else a[rows]

    c = kept(values["cluster"].to_numpy(dtype=np.int64))
    metric_codes, metric_names = pd.factorize(values["metric"])
    metric_codes = kept(metric_codes)
    m = np.append(pd.Index(metrics).get_indexer(metric_names), -1)[metric_codes]
    m = np.where(m < 0, len(metrics), m)
    kind_codes = kept(kind_codes)
    k = k_all[kind_codes]
    # Each cluster's count of each metric as a dense table (NaN where it has none).
    dense = np.full((len(cluster_ids), len(metrics) + 1), np.nan)
    dense[total.index.get_level_values(0).to_numpy(dtype=np.int64),
          total.index.get_level_values(1).to_numpy(dtype=np.int64)] = total.to_numpy()
    weight = kept(values["weight"].to_numpy(dtype=float))
    share = weight / dense[c, m]
    # Weights rounded before ordering: float noise must not reorder near-ties. Order:
    # cluster, metric, kind, weight (heaviest first), then value; values as their ranks
    # among the distinct values (one sort of those, not of every row's text).
    w = np.round(weight, 9)
    value_rank, value_names = pd.factorize(values["value"] if rows is None else values["value"].take(rows), sort=True)
    group = fold_codes([c, m, k])[0]  # (cluster, metric, kind) as one key: two sort keys fewer
    order = np.lexsort((value_rank, -w, group))
    c, w, share = c[order], w[order], share[order]
    starts = run_starts([group[order]])
    position = np.arange(len(c)) - np.repeat(starts, np.diff(np.r_[starts, len(c)])) + 1

    def text(codes, names):
        return codes_as_text(codes[order], names)

    profiles = pd.DataFrame({
        "cluster_id": pd.Series(np.asarray(cluster_ids, dtype=object)).array.take(c),
        "metric": text(metric_codes, metric_names),
        "kind": text(kind_codes, kind_names),
        "position": position.astype(np.int64),
        "value": text(value_rank, value_names),
        "weight": w,
        "share": share,
    })[columns]
    profiles.attrs["kinds"] = kinds
    return profiles


def top_columns(profiles: pd.DataFrame, cluster_ids: Sequence[str], metrics: Sequence[str],
                kinds: Sequence[str] | None = None) -> pd.DataFrame:
    """``top_<kind>_<metric>`` per cluster (the value at position 1, None when none),
    one row per id of ``cluster_ids`` in that order; kinds default ``profiles.attrs["kinds"]``.

    Parameters
    ----------
    profiles : DataFrame
        Long-form profiles (:func:`cluster.stages.profiles.cluster_profiles`).
    cluster_ids : sequence of str
        Cluster ids, in the order of the result's rows.
    metrics : sequence of str
        Metrics, in output order.
    kinds : sequence of str, optional
        ``field`` and/or ``institution``.

    Returns
    -------
    DataFrame
        One row per cluster id.
    """
    kinds = profiles.attrs.get("kinds", list(KINDS)) if kinds is None else kinds
    out = pd.DataFrame(index=pd.Index(list(cluster_ids), name="cluster_id"))
    top = profiles[profiles["position"] == 1]
    for m in metrics:
        for kind in kinds:
            sel = top[(top["metric"] == m) & (top["kind"] == kind)].set_index("cluster_id")["value"]
            col = sel.reindex(out.index)
            out[f"top_{kind}_{m}"] = col.astype(object).where(col.notna(), None).to_numpy()
    return out.reset_index(drop=True)

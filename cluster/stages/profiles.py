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
from cluster.stages.sites import positions_in

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
    present = set(values["kind"].unique())
    kinds = [k for k in (KINDS if kinds is None else kinds) if k in present] if len(values) else \
        [k for k in (KINDS if kinds is None else kinds)]
    if not kinds:
        return None
    if not len(cluster_ids) or values.empty:
        empty = pd.DataFrame(columns=columns)
        empty.attrs["kinds"] = kinds
        return empty
    # The cluster's count of the metric: every site inside, its values labelled or not.
    inside = sites["cluster_id"].notna().to_numpy()
    total = pd.DataFrame({"c": positions_in(sites.loc[inside, "cluster_id"], cluster_ids),
                          "_m": positions_in(sites.loc[inside, "metric"].astype(str), metrics),
                          "w": sites.loc[inside, "weight"].to_numpy(dtype=float)}).groupby(["c", "_m"])["w"].sum()
    out = values[values["kind"].isin(kinds)].rename(columns={"cluster": "c"})
    m = positions_in(out["metric"], metrics)
    out = out.assign(_m=np.where(m < 0, len(metrics), m), _k=positions_in(out["kind"], kinds))
    out["share"] = out["weight"].to_numpy() / total.reindex(
        pd.MultiIndex.from_arrays([out["c"].to_numpy(), out["_m"].to_numpy()])).to_numpy()
    # Weights rounded before ordering: float noise must not reorder near-ties.
    out["w"] = out["weight"].round(9)
    out = out.sort_values(["c", "_m", "_k", "w", "value"], ascending=[True, True, True, False, True],
                          kind="mergesort")
    out["position"] = out.groupby(["c", "_m", "_k"], sort=False).cumcount() + 1
    ids = np.asarray(cluster_ids, dtype=object)
    profiles = pd.DataFrame({
        "cluster_id": ids[out["c"].to_numpy()], "metric": out["metric"].to_numpy(),
        "kind": out["kind"].to_numpy(), "position": out["position"].to_numpy(dtype=np.int64),
        "value": out["value"].to_numpy(), "weight": out["w"].to_numpy(), "share": out["share"].to_numpy(),
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

"""Cluster profiles: what each cluster is made of (main fields and institutions).

The GII reports beside each cluster its main technology field, its main scientific
subject, its top patent applicant and its top publishing institution. Here the same
comes from the optional record columns ``field`` and ``institution``:

* every record gets its fractional weight (as :func:`cluster.stages.sites.fractional_weights`:
  its own ``weight``, else ``1/n`` for a document at n rows), so a document counts once
  and a co-invented patent is split between its locations as in the cluster counts;
* a record belongs to the cluster whose boundary holds its site (records are joined to
  the sites by ``(metric, lat, lon)``, and a site counts towards the cluster that
  :mod:`cluster.stages.boundaries` put it in), so the profile adds up to the cluster's
  count of the metric;
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

KINDS = ("field", "institution")
_BLANK = ("", "nan", "NaN", "None", "<NA>")


def _codes(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``(code per row, labels)``: the stripped text of a column factorised, -1 for a blank
    cell. Works on the distinct values only (a million rows hold a few thousand)."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    text = pd.Series(np.asarray(uniques, dtype=object)).astype(str).str.strip()
    blank = text.isin(_BLANK).to_numpy()
    # Values differing only by surrounding blanks are one value.
    merged, labels = pd.factorize(text.where(~blank, None), use_na_sentinel=True)
    merged = np.append(merged, -1)  # code -1 (a missing cell) stays -1
    return merged[codes], np.asarray(labels, dtype=object)


def profile_kinds(records: pd.DataFrame) -> list[str]:
    """The kinds (``field``, ``institution``) with at least one value in ``records``.

    Parameters
    ----------
    records : DataFrame
        Validated records (``field``, ``institution`` ...).

    Returns
    -------
    list of str
        The kinds present.
    """
    return [k for k in KINDS if k in records.columns and (_codes(records[k])[0] >= 0).any()]


def record_weights(records: pd.DataFrame) -> np.ndarray:
    """Every record's fractional weight, equal to
    :func:`cluster.stages.sites.fractional_weights` (a test checks it): its own ``weight``,
    else ``1 / n`` for a document at ``n`` rows of its metric. Computed on integer codes
    (``np.unique`` of metric and factorised ``doc_id``) because building the string
    MultiIndex of that function costs seconds on a million records.

    Parameters
    ----------
    records : DataFrame
        Validated records (``field``, ``institution`` ...).

    Returns
    -------
    ndarray of shape (n_records,)
        Fractional-count weights.
    """
    w = records["weight"].to_numpy(dtype=float, copy=True)
    frac = np.isnan(w)
    if frac.any():
        doc, _ = pd.factorize(records["doc_id"][frac])
        metric, _ = pd.factorize(records["metric"][frac])
        key = metric.astype(np.int64) * (int(doc.max()) + 1) + doc
        _, inverse, count = np.unique(key, return_inverse=True, return_counts=True)
        w[frac] = 1.0 / count[inverse]
    return w


def _metric_codes(metric: pd.Series) -> np.ndarray:
    """Integer codes of a metric column (categorical codes when it is one: no strings built)."""
    if isinstance(metric.dtype, pd.CategoricalDtype):
        return metric.cat.codes.to_numpy(dtype=np.int64)
    return pd.factorize(metric.astype(str))[0].astype(np.int64)


def _site_positions(records: pd.DataFrame, sites: pd.DataFrame) -> np.ndarray:
    """Row of ``sites`` at each record's ``(metric, lat, lon)``, -1 for none (a hash join
    on numbers: metric names factorised over both frames)."""
    metric = _metric_codes(pd.concat([sites["metric"], records["metric"]], ignore_index=True))
    left = pd.DataFrame({"m": metric[len(sites):], "lat": records["lat"].to_numpy(dtype=float),
                         "lon": records["lon"].to_numpy(dtype=float)})
    right = pd.DataFrame({"m": metric[:len(sites)], "lat": sites["lat"].to_numpy(dtype=float),
                          "lon": sites["lon"].to_numpy(dtype=float), "row": np.arange(len(sites))})
    joined = left.merge(right, on=["m", "lat", "lon"], how="left", sort=False)
    return joined["row"].fillna(-1).to_numpy(dtype=np.int64)


def cluster_profiles(records: pd.DataFrame, sites: pd.DataFrame, cluster_ids: Sequence[str],
                     metrics: Sequence[str], kinds: Sequence[str] | None = None) -> pd.DataFrame | None:
    """Weight and share of every field and institution in every cluster, per metric.

    Parameters
    ----------
    records : DataFrame
        The records the run counted (inside the year window), with ``metric``, ``lat``,
        ``lon``, ``weight``, ``doc_id`` and the ``field``/``institution`` columns.
    sites : DataFrame
        The run's sites with ``cluster_id`` (None outside every cluster).
    cluster_ids : sequence of str
        Clusters in the order of the output (rank order).
    metrics : sequence of str
        Metrics in output order.
    kinds : sequence of str, optional
        Kinds to profile; default those of :data:`KINDS` with a value in ``records``.

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
    coded = {k: _codes(records[k]) for k in (KINDS if kinds is None else kinds) if k in records.columns}
    coded = {k: v for k, v in coded.items() if (v[0] >= 0).any()}
    kinds = list(coded)
    if not kinds:
        return None
    if not len(cluster_ids):
        empty = pd.DataFrame(columns=columns)
        empty.attrs["kinds"] = kinds
        return empty
    order = {cid: i for i, cid in enumerate(cluster_ids)}
    site_cluster = sites["cluster_id"].map(order).fillna(-1).to_numpy(dtype=np.int64)
    pos = _site_positions(records, sites)
    cluster = np.where(pos >= 0, site_cluster[np.maximum(pos, 0)], -1)
    keep = cluster >= 0
    weight = record_weights(records)[keep]
    metric = _metric_codes(records["metric"])[keep]
    base = pd.DataFrame({"c": cluster[keep], "metric": metric, "w": weight})
    # The cluster's count of the metric: every record inside, labelled or not.
    total = base.groupby(["c", "metric"], sort=False)["w"].sum()
    frames = []
    for kind in kinds:
        code, labels = coded[kind]
        code = code[keep]
        part = base[code >= 0].assign(v=code[code >= 0])
        g = part.groupby(["c", "metric", "v"], sort=False, as_index=False)["w"].sum()
        g["value"] = labels[g["v"].to_numpy()]
        g["kind"] = kind
        frames.append(g.drop(columns="v"))
    out = pd.concat(frames, ignore_index=True)
    out["share"] = out["w"].to_numpy() / total.reindex(pd.MultiIndex.from_frame(out[["c", "metric"]])).to_numpy()
    names = (list(records["metric"].cat.categories) if isinstance(records["metric"].dtype, pd.CategoricalDtype)
             else list(pd.factorize(records["metric"].astype(str))[1]))
    out["metric"] = np.asarray(names, dtype=object)[out["metric"].to_numpy()]
    rank_metric = {m: i for i, m in enumerate(metrics)}
    rank_kind = {k: i for i, k in enumerate(kinds)}
    out["_m"] = out["metric"].map(rank_metric).fillna(len(rank_metric))
    out["_k"] = out["kind"].map(rank_kind)
    # Weights rounded before ordering: float noise must not reorder near-ties.
    out["w"] = out["w"].round(9)
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

"""Stage 2: fractional counting and reduction of records to unique weighted sites.

A document listed at *n* locations (n rows with the same ``metric`` and ``doc_id``)
gives ``1/n`` to each row, so every document counts once in its metric's world total
(the fractional counting of the GII and of bibliometrics). Rows that carry a ``weight``
are pre-weighted sites and keep it.

Records are then reduced to unique sites: one row per ``(metric, lat, lon)`` with the
summed weight. Clustering works on sites, so memory follows the number of distinct
locations, not of records.

Map-reduce form (for Dask or any partitioned engine): everything here is a sum, so it
splits into per-partition partial aggregates and an associative combine:

1. ``document_sizes`` on each partition, combined by summing (``combine_document_sizes``);
2. ``partial_sites`` on each partition given the combined sizes;
3. ``combine_partials`` over the partials, then ``finalize_sites``.

``reduce_to_sites`` runs exactly these steps on one in-memory frame; a test checks that
a partitioned run gives the same sites.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cluster.errors import UserInputError

log = logging.getLogger(__name__)

_KEY = ["metric", "lat", "lon"]
_MISSING_COUNTRY = ""


def filter_years(records: pd.DataFrame, year_start: int | None, year_end: int | None) -> tuple[pd.DataFrame, int]:
    """Keep the records inside an inclusive year window.

    Parameters
    ----------
    records : DataFrame
        Validated records (``year`` nullable integer).
    year_start, year_end : int or None
        First and last year kept; ``None`` leaves that side open. Rows without a year are
        dropped when a window is set.

    Returns
    -------
    records : DataFrame
        The kept records (fresh positional index).
    dropped : int
        How many were left out.

    Raises
    ------
    UserInputError
        When the window selects no record (the message gives the years present).
    """
    if year_start is None and year_end is None:
        return records, 0
    year = records["year"]
    keep = year.notna()
    if year_start is not None:
        keep &= year >= year_start
    if year_end is not None:
        keep &= year <= year_end
    keep = keep.fillna(False).to_numpy(dtype=bool)
    dropped = int((~keep).sum())
    if not keep.any():
        years = records["year"].dropna()
        seen = f"{int(years.min())}–{int(years.max())}" if len(years) else "none"
        raise UserInputError(
            f"The year window {year_start or '...'}–{year_end or '...'} selects no records "
            f"(years in the input: {seen}). Change [input] year_start/year_end or {{year_window}}."
        )
    return records.loc[keep].reset_index(drop=True), dropped


def document_sizes(records: pd.DataFrame) -> pd.Series:
    """Rows per ``(metric, doc_id)`` among records without their own weight.

    Parameters
    ----------
    records : DataFrame
        One partition of validated records.

    Returns
    -------
    Series
        Row count indexed by ``(metric, doc_id)``; partial: combine partitions with
        :func:`combine_document_sizes`.
    """
    frac = records[records["weight"].isna()]
    return frac.groupby(["metric", "doc_id"], observed=True, sort=False).size()


def combine_document_sizes(parts: Iterable[pd.Series]) -> pd.Series:
    """Sum partial document sizes from several partitions.

    Parameters
    ----------
    parts : iterable of Series
        :func:`document_sizes` of each partition.

    Returns
    -------
    Series
        Rows per ``(metric, doc_id)`` over all partitions.
    """
    parts = list(parts)
    if len(parts) == 1:
        return parts[0]
    return pd.concat(parts).groupby(level=[0, 1], observed=True, sort=False).sum()


def fractional_weights(records: pd.DataFrame, sizes: pd.Series) -> np.ndarray:
    """Weight of every record: its own ``weight``, else ``1 / n`` for a document at n rows.

    Parameters
    ----------
    records : DataFrame
        Validated records (``weight`` NaN where the document is counted fractionally).
    sizes : Series
        Rows per ``(metric, doc_id)`` over all records (:func:`document_sizes`).

    Returns
    -------
    ndarray of shape (n_records,)
        Weights in fractional-count units (a document sums to 1 over its rows).
    """
    w = records["weight"].to_numpy(dtype=float, copy=True)
    frac = np.isnan(w)
    if frac.any():
        idx = pd.MultiIndex.from_arrays([records["metric"][frac], records["doc_id"][frac]])
        n = sizes.reindex(idx).to_numpy(dtype=float)
        w[frac] = 1.0 / n
    return w


def partial_sites(records: pd.DataFrame, sizes: pd.Series) -> pd.DataFrame:
    """Per-partition aggregate: weight and record count per (metric, lat, lon, country).

    Parameters
    ----------
    records : DataFrame
        One partition of validated records.
    sizes : Series
        Rows per document over all partitions (:func:`combine_document_sizes`).

    Returns
    -------
    DataFrame
        ``metric, lat, lon, country, weight, n_records``; combine with
        :func:`combine_partials`, then :func:`finalize_sites`.
    """
    country = records["country"] if "country" in records else None
    frame = pd.DataFrame({
        "metric": records["metric"],
        "lat": records["lat"].to_numpy(dtype=float),
        "lon": records["lon"].to_numpy(dtype=float),
        "country": (country.fillna(_MISSING_COUNTRY) if country is not None else _MISSING_COUNTRY),
        "weight": fractional_weights(records, sizes),
        "n_records": 1,
    })
    # Sort first so each group's floating-point sum runs in the same order whatever the
    # input row order: shuffled input must give bit-identical weights.
    order = np.lexsort((frame["weight"].to_numpy(), frame["country"].to_numpy(dtype=str),
                        frame["lon"].to_numpy(), frame["lat"].to_numpy(),
                        frame["metric"].cat.codes.to_numpy() if hasattr(frame["metric"], "cat")
                        else frame["metric"].to_numpy(dtype=str)))
    frame = frame.iloc[order]
    return frame.groupby(_KEY + ["country"], observed=True, sort=False, as_index=False).sum()


def combine_partials(parts: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Associative combine of :func:`partial_sites` outputs.

    Parameters
    ----------
    parts : iterable of DataFrame
        Partial aggregates of several partitions.

    Returns
    -------
    DataFrame
        One partial aggregate of them all.
    """
    parts = list(parts)
    if len(parts) == 1:
        return parts[0]
    return pd.concat(parts, ignore_index=True).groupby(
        _KEY + ["country"], observed=True, sort=False, as_index=False).sum()


def finalize_sites(partial: pd.DataFrame, metrics: Iterable[str]) -> pd.DataFrame:
    """One row per (metric, lat, lon) with the dominant country, sorted deterministically.

    Parameters
    ----------
    partial : DataFrame
        :func:`partial_sites` (or :func:`combine_partials`) output.
    metrics : iterable of str
        Metric names in the configuration's order.

    Returns
    -------
    DataFrame
        Columns ``metric`` (categorical in config order), ``lat``, ``lon`` (degrees),
        ``weight`` (fractional-count units), ``n_records``, ``country`` (ISO alpha-2 of
        the heaviest country at that site, or None). Sorted by metric, lat, lon, so the
        same records in any order give the same sites.
    """
    metrics = list(metrics)
    p = partial.copy()
    p["metric"] = p["metric"].astype(pd.CategoricalDtype(metrics))
    # Dominant country: heaviest, ties broken by code, so the choice is order-free.
    p = p.sort_values(_KEY + ["weight", "country"], ascending=[True, True, True, False, True],
                      kind="mergesort")
    g = p.groupby(_KEY, observed=True, sort=True)
    sites = g.agg(weight=("weight", "sum"), n_records=("n_records", "sum"),
                  country=("country", "first")).reset_index()
    sites["country"] = sites["country"].replace(_MISSING_COUNTRY, None)
    sites["n_records"] = sites["n_records"].astype(np.int64)
    return sites.reset_index(drop=True)


def reduce_to_sites(records: pd.DataFrame, metrics: Iterable[str]) -> pd.DataFrame:
    """Fractionally count records and reduce them to unique weighted sites (one partition).

    Parameters
    ----------
    records : DataFrame
        Validated records.
    metrics : iterable of str
        Metric names, in the order of the configuration.

    Returns
    -------
    DataFrame
        As :func:`finalize_sites`.
    """
    sizes = document_sizes(records)
    sites = finalize_sites(partial_sites(records, sizes), metrics)
    log.info("reduced %s records to %s unique sites", f"{len(records):,}", f"{len(sites):,}")
    return sites


def world_totals(sites: pd.DataFrame, metrics: Iterable[str]) -> dict[str, float]:
    """Total weight per metric over all sites, noise included: the denominators of shares.

    Parameters
    ----------
    sites : DataFrame
        Weighted sites.
    metrics : iterable of str
        Metric names.

    Returns
    -------
    dict
        Metric -> total weight (0.0 for a metric without records).
    """
    tot = sites.groupby("metric", observed=False)["weight"].sum()
    return {m: float(tot.get(m, 0.0)) for m in metrics}


@dataclass(frozen=True)
class PreparedSites:
    """The sites stage's result (see :func:`prepare_sites`).

    Attributes
    ----------
    records : DataFrame
        The records inside the year window (what the bootstrap resamples).
    sites : DataFrame
        Unique weighted sites (:func:`finalize_sites`).
    totals : dict
        World total weight per metric, noise included (:func:`world_totals`).
    records_outside_years : int
        Records left out by the year window.
    warnings : tuple of str
        What a user should know (records outside the window, metrics without records).
    """

    records: pd.DataFrame
    sites: pd.DataFrame
    totals: dict
    records_outside_years: int
    warnings: tuple


def prepare_sites(records: pd.DataFrame, config) -> PreparedSites:
    """The whole sites stage: year window, fractional counting, reduction to sites, totals.

    Parameters
    ----------
    records : DataFrame
        Validated records (:func:`cluster.stages.read.read_records`).
    config : Config
        ``year_start``, ``year_end`` and the metric names.

    Returns
    -------
    PreparedSites

    Raises
    ------
    UserInputError
        When the year window selects no record.
    """
    metrics = list(config.metric_names)
    notes = []
    kept, dropped = filter_years(records, config.year_start, config.year_end)
    if dropped:
        notes.append(f"{dropped:,} of {dropped + len(kept):,} records are outside the year window "
                     f"{config.year_start or '...'}–{config.year_end or '...'} and were left out")
    sites = reduce_to_sites(kept, metrics)
    totals = world_totals(sites, metrics)
    for m in metrics:
        if totals[m] == 0:
            notes.append(f"metric '{m}' has no records; the ranking uses the metrics present "
                         f"({', '.join(x for x in metrics if totals[x] > 0)})")
    for note in notes:
        log.warning(note)
    return PreparedSites(records=kept, sites=sites, totals=totals, records_outside_years=dropped,
                         warnings=tuple(notes))

"""Stage 2: fractional counting and reduction of records to unique weighted sites.

A document listed at *n* locations (n rows with the same ``metric`` and ``doc_id``)
gives ``1/n`` to each row, so every document counts once in its metric's world total
(the fractional counting of the GII and of bibliometrics). Rows that carry a ``weight``
are pre-weighted sites and keep it.

Records are reduced to unique sites: one row per ``(metric, lat, lon)`` with the summed
weight. Clustering works on sites, so memory follows the number of distinct locations,
not of records.

The engine (:mod:`cluster.ingest.engine`, or :mod:`cluster.ingest.distributed` on a Dask
cluster) only *counts*: ``c`` rows per ``(metric, lat, lon, country, n, weight)``. Counts
are integers, so they do not depend on the order rows arrive in, on threads or on
partitions. This module turns the counts into weights in one fixed order
(:func:`sites_from_groups`): a group adds ``c / n`` (one correctly rounded division, so
500 whole documents make exactly 500.0) or ``c * weight``, groups sorted by their key.
Any engine, any row order, any partitioning give bit-identical site weights.
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
    with np.errstate(over="ignore"):
        tot = sites.groupby("metric", observed=False)["weight"].sum()
    return {m: float(tot.get(m, 0.0)) for m in metrics}


def group_weights(n: np.ndarray, weight: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Weight of each group of records: ``c / n`` for documents of size n, else ``c * weight``.

    Parameters
    ----------
    n : ndarray
        Document size (rows of the document), NaN or 0 for pre-weighted rows.
    weight : ndarray
        The rows' own weight (NaN for fractionally counted rows).
    c : ndarray
        Rows in the group.

    Returns
    -------
    ndarray of float64
        Fractional-count units.
    """
    n = np.asarray(n, dtype=float)
    c = np.asarray(c)
    # In place, two temporaries: each 2 M-group array more is 16 MB of fresh pages.
    fractional = n > 0  # NaN: False
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = np.multiply(c, np.asarray(weight, dtype=float), dtype=float)
        np.divide(c, n, out=out, where=fractional, dtype=float)
    return out


def positions_in(values, categories: Iterable) -> np.ndarray:
    """Position of each value in ``categories``, each distinct value looked up once
    (``Series.map`` on 700 k strings takes a tenth of a second).

    Parameters
    ----------
    values : array-like or Series
        The values (text or numbers).
    categories : iterable
        The names in their order.

    Returns
    -------
    ndarray of int64
        The position of each value, -1 when absent or missing.
    """
    categories = list(categories)
    codes, uniques = pd.factorize(values)
    pos = np.append(pd.Index(categories).get_indexer(uniques), -1)  # code -1 -> -1
    return pos[codes].astype(np.int64)


def codes_as_text(codes, names):
    """Rows as text from their codes into ``names``, each name made text once (no Python
    object per row, as ``astype(str)`` of an object column would make).

    Parameters
    ----------
    codes : array-like of int
        Each row's position in ``names`` (-1: missing).
    names : array-like
        The distinct values.

    Returns
    -------
    pandas ExtensionArray of str
        Missing where the code is -1.
    """
    return pd.Index(names).astype(str).array.take(np.asarray(codes), allow_fill=True)


def metric_codes(sites: pd.DataFrame, metrics: Iterable[str]) -> np.ndarray:
    """Position of each site's metric in ``metrics`` (-1 for another metric), as int64.

    Sites' ``metric`` is categorical: comparing its codes costs nothing, while turning
    it into text for 100 k+ sites (``astype(str)``) is tens of milliseconds each time.

    Parameters
    ----------
    sites : DataFrame
        Sites (or any frame) with a ``metric`` column.
    metrics : iterable of str
        Metric names.

    Returns
    -------
    ndarray of shape (n_sites,), int64
    """
    return positions_in(sites["metric"], list(metrics))


def _names_of(codes: np.ndarray, names) -> np.ndarray:
    """Object array of ``names[code]``, None where the code is -1."""
    out = np.full(len(codes), None, dtype=object)
    have = codes >= 0
    out[have] = np.asarray(names, dtype=object)[codes[have]]
    return out


def _is_sorted(keys: list[np.ndarray]) -> bool:
    """Whether rows are in ascending lexicographic order of ``keys`` (first key first)."""
    n = len(keys[0]) if keys else 0
    if n < 2:
        return True
    before = np.zeros(n - 1, dtype=bool)  # row i sorts strictly before row i + 1
    tied = np.ones(n - 1, dtype=bool)
    for k in keys:
        a, b = k[:-1], k[1:]
        before |= tied & (a < b)
        tied &= a == b
    return bool((before | tied).all())


def fold_codes(keys: list[np.ndarray]) -> tuple[np.ndarray, int]:
    """One int64 per row that sorts as the rows of integer columns ``keys`` do (first key
    first): a mixed-radix number, the codes re-ranked when the radix would overflow.

    Parameters
    ----------
    keys : list of ndarray of int
        Columns of equal length (codes, cluster numbers; negative values allowed).

    Returns
    -------
    folded : ndarray of int64
        Equal where the rows are equal in every key; ordered as the rows lexicographically.
    span : int
        One more than the largest value of ``folded``.
    """
    folded, span = np.zeros(len(keys[0]) if keys else 0, dtype=np.int64), 1
    for k in keys:
        k = np.asarray(k, dtype=np.int64)
        low = int(k.min()) if len(k) else 0
        size = int(k.max()) - low + 1 if len(k) else 1
        if span * size >= 2**62:
            _, folded = np.unique(folded, return_inverse=True)
            span = int(folded.max()) + 1 if len(folded) else 1
        folded, span = folded * size + (k - low), span * size
    return folded, span


def run_starts(keys: list[np.ndarray]) -> np.ndarray:
    """Start of every run of equal keys in rows sorted by them.

    Parameters
    ----------
    keys : list of ndarray
        Columns of equal length, the rows sorted by them (NaN starts a run of its own).

    Returns
    -------
    ndarray of int64
        The row where each run of rows equal in every key begins (0 first).
    """
    n = len(keys[0]) if keys else 0
    change = np.zeros(n, dtype=bool)
    if n:
        change[0] = True
        for k in keys:
            change[1:] |= k[1:] != k[:-1]
    return np.flatnonzero(change)


def sites_from_groups(groups: pd.DataFrame, metrics: Iterable[str]) -> pd.DataFrame:
    """Unique weighted sites from the engine's group counts.

    Groups are sorted by their whole key and summed left to right in that order, first
    per (site, country), then per site over its countries in code order: the same
    groups give the same bits whatever order the engine returned them in.

    Parameters
    ----------
    groups : DataFrame
        ``metric, lat, lon, country, n, weight, c`` (:class:`cluster.ingest.engine.Reduction`);
        a key may repeat (its counts are added).
    metrics : iterable of str
        Metric names in the configuration's order.

    Returns
    -------
    DataFrame
        Columns ``metric`` (categorical in config order), ``lat``, ``lon`` (degrees),
        ``weight`` (fractional-count units), ``n_records``, ``country`` (ISO alpha-2 of
        the heaviest country at that site, ties to the first code, or None). Sorted by
        metric, lat, lon.
    """
    metrics = list(metrics)
    code = positions_in(groups["metric"], metrics)
    lat = groups["lat"].to_numpy(dtype=float)
    lon = groups["lon"].to_numpy(dtype=float)
    # Countries as codes in sort order, missing (-1) first; text only for the sites.
    country, country_names = pd.factorize(groups["country"], sort=True)
    country = country.astype(np.int64)
    n_raw, own_raw = groups["n"].to_numpy(dtype=float), groups["weight"].to_numpy(dtype=float)
    keys = [code, lat, lon, country, np.nan_to_num(n_raw, nan=-1.0), np.nan_to_num(own_raw, nan=-1.0)]
    c = groups["c"].to_numpy(dtype=np.int64)
    # The engine returns its groups in this order already (scan.reduce_records sorts
    # them in parallel); the check is linear, the sort it saves is not.
    if not _is_sorted(keys):
        order = np.lexsort(keys[::-1])
        keys, c, n_raw, own_raw = [k[order] for k in keys], c[order], n_raw[order], own_raw[order]
    # A key may come in several groups (countries as read that normalise alike, the
    # partitions of a distributed reduction): their counts are added first, as integers.
    same = run_starts(keys)
    if len(same) < len(c):
        keys, n_raw, own_raw = [k[same] for k in keys], n_raw[same], own_raw[same]
        c = np.add.reduceat(c, same)
    code, lat, lon, country = keys[:4]
    w = group_weights(n_raw, own_raw, c)
    # Per (site, country), then per site over countries in code order.
    by_country = run_starts([code, lat, lon, country])
    with np.errstate(over="ignore"):
        w_country = np.add.reduceat(w, by_country) if len(w) else np.zeros(0)
    c_country = np.add.reduceat(c, by_country) if len(c) else np.zeros(0, np.int64)
    sc, slat, slon = code[by_country], lat[by_country], lon[by_country]
    by_site = run_starts([sc, slat, slon])
    with np.errstate(over="ignore"):  # an overflow is reported by the caller, with the rows
        weight = np.add.reduceat(w_country, by_site) if len(w_country) else np.zeros(0)
    n_records = np.add.reduceat(c_country, by_site) if len(c_country) else np.zeros(0, np.int64)
    # Dominant country: the heaviest, ties to the first code (countries are in code order).
    site_of = np.repeat(np.arange(len(by_site)), np.diff(np.r_[by_site, len(by_country)]))
    heaviest = np.maximum.reduceat(w_country, by_site) if len(w_country) else np.zeros(0)
    is_max = w_country == heaviest[site_of]
    first_max = np.full(len(by_site), -1)
    idx = np.flatnonzero(is_max)
    first_max[site_of[idx[::-1]]] = idx[::-1]
    sites = pd.DataFrame({
        "metric": pd.Categorical.from_codes(sc[by_site], categories=metrics),
        "lat": slat[by_site], "lon": slon[by_site], "weight": weight,
        "n_records": n_records.astype(np.int64),
        "country": _names_of(country[by_country][first_max], country_names),
    })
    return sites


def cluster_values(counts: pd.DataFrame) -> pd.DataFrame:
    """Weight of every field or institution value per cluster and metric.

    Parameters
    ----------
    counts : DataFrame
        ``cluster, metric, kind, value, n, weight, c`` (:func:`cluster.ingest.engine.profile_counts`).

    Returns
    -------
    DataFrame
        ``cluster, metric, kind, value, weight``, one row per distinct key; the weights
        of a key summed in the order of its ``(n, weight)`` (bit-identical whatever the
        engine's order). Rows are in no particular order (the profiles sort them).
    """
    # Text keys as codes in order of appearance (hashing, no sort of strings): only the
    # order *within* a key (by n, then own weight) decides the sums' bits. The key and
    # ``n`` folded into one integer sort as the columns would (one sort instead of six).
    key, _ = fold_codes([counts["cluster"].to_numpy(dtype=np.int64)]
                        + [pd.factorize(counts[k])[0] for k in ("metric", "kind", "value")])
    n_raw, own_raw = counts["n"].to_numpy(dtype=float), counts["weight"].to_numpy(dtype=float)
    n_rank = pd.factorize(np.nan_to_num(n_raw, nan=-1.0), sort=True)[0]  # a count: never -0.0
    order = np.lexsort([np.nan_to_num(own_raw, nan=-1.0), fold_codes([key, n_rank])[0]])
    key = key[order]
    w = group_weights(n_raw[order], own_raw[order], counts["c"].to_numpy()[order])
    runs = run_starts([key])
    pick = order[runs]

    def text(col):  # the distinct keys' rows only (a categorical's names made text once)
        s = counts[col]
        if isinstance(s.dtype, pd.CategoricalDtype):
            return pd.Series(codes_as_text(s.cat.codes.to_numpy()[pick], s.cat.categories))
        return s.iloc[pick].reset_index(drop=True).astype(str)

    return pd.DataFrame({"cluster": counts["cluster"].to_numpy(dtype=np.int64)[pick], "metric": text("metric"),
                         "kind": text("kind"), "value": counts["value"].iloc[pick].reset_index(drop=True),
                         "weight": np.add.reduceat(w, runs) if len(w) else np.zeros(0)})


def reduce_to_sites(records: pd.DataFrame, metrics: Iterable[str]) -> pd.DataFrame:
    """Fractionally count validated in-memory records and reduce them to unique weighted sites.

    Parameters
    ----------
    records : DataFrame
        Validated records (:func:`cluster.ingest.read.validate_frame`).
    metrics : iterable of str
        Metric names, in the order of the configuration.

    Returns
    -------
    DataFrame
        As :func:`sites_from_groups`.
    """
    import cluster.ingest as ingest

    metrics = list(metrics)
    return sites_from_groups(ingest.reduce(ingest.in_memory(records), metrics).groups, metrics)


@dataclass(frozen=True)
class PreparedSites:
    """The sites stage's result (see :func:`prepare_sites`).

    Attributes
    ----------
    sites : DataFrame
        Unique weighted sites (:func:`sites_from_groups`).
    totals : dict
        World total weight per metric, noise included (:func:`world_totals`).
    n_records : int
        Valid records read (before the year window).
    records_outside_years : int
        Records left out by the year window.
    warnings : tuple of str
        What a user should know (records outside the window, metrics without records).
    records : Records
        Where the records are (to word problems found later; never read again).
    per_file : dict
        Records per input file.
    kept : Kept or None
        What the profiles and the bootstrap need from the same pass over the records
        (:class:`cluster.ingest.Kept`); None unless asked for (``keep``).
    """

    sites: pd.DataFrame
    totals: dict
    n_records: int
    records_outside_years: int
    warnings: tuple
    records: object
    per_file: dict
    kept: object = None


def prepare_sites(records, config, *, con=None, keep: bool = False) -> PreparedSites:
    """The whole sites stage: validation, year window, fractional counting, sites, totals.

    Parameters
    ----------
    records : Records or DataFrame
        Record inputs (:func:`cluster.ingest.engine.open_records`) or validated records in
        memory (:func:`cluster.ingest.read.validate_frame`).
    config : Config
        ``year_start``, ``year_end``, the metric names and the ``[engine]`` settings: with
        ``scheduler`` set the reduction runs on that Dask cluster.
    con : duckdb.DuckDBPyConnection, optional
        The embedded engine's connection (default: a new one with ``config``'s settings).
    keep : bool, default False
        Keep, from the same pass, what the profiles (when the records have a ``field``
        or ``institution``) and the bootstrap (when ``bootstrap_replicates > 0``) need
        (``PreparedSites.kept``).

    Returns
    -------
    PreparedSites

    Raises
    ------
    UserInputError
        When the year window selects no record; :class:`~cluster.errors.InputDataError`
        for invalid records.
    """
    import cluster.ingest as ingest

    metrics = list(config.metric_names)
    if isinstance(records, pd.DataFrame):
        records = ingest.in_memory(records)
    # The profiles (a field or institution column) and the bootstrap read what this pass
    # keeps: the records are read once.
    keep = keep and bool(set(ingest.PROFILE_COLUMNS) & records.columns or config.bootstrap_replicates > 0)
    reduction = ingest.reduce(records, metrics, config, con=con, keep=keep)
    notes = []
    dropped = reduction.outside_years
    if dropped:
        if dropped == reduction.n_records:
            years = [y for y in reduction.years if y is not None]
            seen = f"{min(years)}–{max(years)}" if years else "none"
            raise UserInputError(
                f"The year window {config.year_start or '...'}–{config.year_end or '...'} selects no records "
                f"(years in the input: {seen}). Change [input] year_start/year_end or {{year_window}}."
            )
        notes.append(f"{dropped:,} of {reduction.n_records:,} records are outside the year window "
                     f"{config.year_start or '...'}–{config.year_end or '...'} and were left out")
    if records.rejects is not None and records.rejects.rows:
        notes.append(records.rejects.summary())
    sites = sites_from_groups(reduction.groups, metrics)
    totals = world_totals(sites, metrics)
    if not all(np.isfinite(v) for v in totals.values()):
        ingest.raise_overflow(records, metrics)
    log.info("reduced %s records to %s unique sites", f"{reduction.n_records - dropped:,}", f"{len(sites):,}")
    absent = [m for m in metrics if totals[m] == 0]
    if absent:
        # Said once and quietly: a single-metric input is the common case, not a problem
        # (run.json's counts show every metric's sites; RunResult lists them once).
        log.info("no records of %s; the ranking uses the metrics present (%s)", ", ".join(absent),
                 ", ".join(x for x in metrics if totals[x] > 0))
    for note in notes:
        log.warning(note)
    return PreparedSites(sites=sites, totals=totals, n_records=reduction.n_records,
                         records_outside_years=dropped, warnings=tuple(notes), records=records,
                         per_file=reduction.per_file, kept=reduction.kept)

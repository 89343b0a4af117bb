"""Metro consistency: does a clustering draw the metros as people draw them?

The sweep's heat maps say how much a setting agrees with the baseline, not which
setting is right. Here each setting is checked against *reference metros*: city points
with a group label, cities of one group belonging to one cluster (Tokyo and Yokohama)
and cities of different groups to different clusters (New York City and Philadelphia).

The built-in reference (``data/gii_metros.csv``) is the GII's published clusters
resolved to the points of the cities they are named after: the cluster names of GII
2023's top 15 (``/reference/gii2023_top_clusters.csv``), the clusters named in GII 2025's
report on its top 100, and further clusters of GII 2023's top-100 table; the points are
GeoNames places (the most populous place of that name in the economy), each with its
``geonameid``. A user file takes the same columns: ``name, lat, lon, group``.

For one clustering (:class:`cluster.stages.membership.Membership`), a city belongs to
the cluster its nearest counted site (``inside``) is in, among the sites within
``reach_km`` of its point; a city with none is *missing* (the clustering does not reach
it). Over all pairs of cities that are not missing:

* **merged**: the pair is in one cluster but in two reference groups;
* **split**: the pair is in one reference group but in two clusters.

``errors = merged + split``; the setting with the fewest errors (then the fewest
missing cities, then the smallest radius) is marked ``best``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from cluster.engine.geo import chord_for_km, unit_vectors
from cluster.errors import UserInputError

__all__ = ["BUILTIN", "city_clusters", "consistency_table", "load_reference", "pair_errors",
           "plot_consistency"]

#: The built-in reference file, inside the package.
BUILTIN = "gii_metros.csv"
REFERENCE_COLUMNS = ("name", "lat", "lon", "group")


def load_reference(path: str | Path | None = None) -> pd.DataFrame:
    """Reference city points with a group label.

    Parameters
    ----------
    path : str or Path, optional
        A CSV with columns ``name, lat, lon, group`` (more are kept; lines starting with
        ``#`` are comments). None: the built-in GII reference.

    Returns
    -------
    DataFrame
        ``name, lat, lon, group`` (and any other columns), one row per city.

    Raises
    ------
    UserInputError
        When the file is missing, lacks a column, or holds a bad coordinate (naming the
        file, row and column).
    """
    if path is None:
        with resources.files("cluster.tuning").joinpath("data", BUILTIN).open("r", encoding="utf-8") as f:
            return pd.read_csv(f, comment="#")
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"{path}: reference file not found. Give a CSV of city points with "
                             f"columns {', '.join(REFERENCE_COLUMNS)}.")
    ref = pd.read_csv(path, comment="#")
    missing = [c for c in REFERENCE_COLUMNS if c not in ref.columns]
    if missing:
        raise UserInputError(f"{path}: missing column(s) {', '.join(missing)}; a reference needs "
                             f"{', '.join(REFERENCE_COLUMNS)} (cities of one group belong together).")
    for col, lo, hi in (("lat", -90, 90), ("lon", -180, 180)):
        values = pd.to_numeric(ref[col], errors="coerce")
        bad = np.flatnonzero(~values.between(lo, hi).to_numpy())
        if len(bad):
            i = int(bad[0])
            raise UserInputError(f"{path}: row {i + 2}, column {col}: {ref[col].iloc[i]!r} is not a "
                                 f"number in [{lo}, {hi}] degrees.")
        ref[col] = values.astype(float)
    if ref["name"].duplicated().any():
        dup = ref["name"][ref["name"].duplicated()].iloc[0]
        raise UserInputError(f"{path}: column name: {dup!r} appears twice; give each city a unique name.")
    ref["group"] = ref["group"].astype(str)
    return ref


def city_clusters(sites: pd.DataFrame, inside: np.ndarray, reference: pd.DataFrame,
                  reach_km: float = 15.0) -> np.ndarray:
    """The cluster of each reference city: that of the nearest counted site within ``reach_km``.

    Parameters
    ----------
    sites : DataFrame
        Sites (``lat``, ``lon`` in degrees).
    inside : ndarray of shape (n_sites,)
        Cluster each site counts towards, -1 for none (``Membership.inside``).
    reference : DataFrame
        :func:`load_reference` output.
    reach_km : float, default=15.0
        Greatest distance from a city's point to the site that places it, km.

    Returns
    -------
    ndarray of shape (n_cities,)
        Cluster of each city, -1 when no counted site is within reach (missing).
    """
    from scipy.spatial import cKDTree

    out = np.full(len(reference), -1, np.int64)
    counted = np.flatnonzero(np.asarray(inside) >= 0)
    if len(counted) == 0 or len(reference) == 0:
        return out
    tree = cKDTree(unit_vectors(sites["lat"].to_numpy()[counted], sites["lon"].to_numpy()[counted]))
    dist, j = tree.query(unit_vectors(reference["lat"].to_numpy(), reference["lon"].to_numpy()), k=1,
                         distance_upper_bound=chord_for_km(reach_km))
    hit = np.isfinite(dist)
    out[hit] = np.asarray(inside)[counted[j[hit]]]
    return out


def pair_errors(reference: pd.DataFrame, clusters: np.ndarray) -> dict:
    """Merged and split pairs of one clustering against the reference.

    Parameters
    ----------
    reference : DataFrame
        :func:`load_reference` output.
    clusters : ndarray of shape (n_cities,)
        :func:`city_clusters` output.

    Returns
    -------
    dict
        ``merged`` and ``split`` (lists of ``"A / B"`` in reference order), ``missing``
        (list of city names) and their counts ``n_merged``, ``n_split``, ``n_missing``,
        ``errors``.
    """
    names = reference["name"].astype(str).to_numpy()
    group = reference["group"].to_numpy()
    found = np.flatnonzero(clusters >= 0)
    merged, split = [], []
    for a_i, a in enumerate(found):
        for b in found[a_i + 1:]:
            same_cluster = clusters[a] == clusters[b]
            same_group = group[a] == group[b]
            if same_cluster and not same_group:
                merged.append(f"{names[a]} / {names[b]}")
            elif same_group and not same_cluster:
                split.append(f"{names[a]} / {names[b]}")
    missing = [str(n) for n in names[clusters < 0]]
    return {"n_merged": len(merged), "n_split": len(split), "errors": len(merged) + len(split),
            "n_missing": len(missing), "merged": merged, "split": split, "missing": missing}


def consistency_table(sites: pd.DataFrame, memberships: dict, reference: pd.DataFrame,
                      reach_km: float = 15.0) -> pd.DataFrame:
    """One row per setting: merged, split and missing against the reference, best marked.

    Parameters
    ----------
    sites : DataFrame
        The sites the memberships cluster.
    memberships : dict
        ``(method, eps_km, scale) -> Membership`` (:func:`cluster.tuning.sweep.run_sweep`).
    reference : DataFrame
        :func:`load_reference` output.
    reach_km : float, default=15.0
        See :func:`city_clusters`.

    Returns
    -------
    DataFrame
        ``method, eps_km, min_weight_scale, n_clusters, n_merged, n_split, errors,
        n_missing, best, merged, split, missing`` (pairs joined by ``"; "``), in the
        order of ``memberships``' keys, sorted.
    """
    rows = []
    for key in sorted(memberships):
        method, eps, scale = key
        mem = memberships[key]
        res = pair_errors(reference, city_clusters(sites, mem.inside, reference, reach_km))
        rows.append({"method": method, "eps_km": eps, "min_weight_scale": scale,
                     "n_clusters": mem.n_clusters, **{k: res[k] for k in ("n_merged", "n_split", "errors",
                                                                           "n_missing")},
                     "merged": "; ".join(res["merged"]), "split": "; ".join(res["split"]),
                     "missing": "; ".join(res["missing"])})
    table = pd.DataFrame(rows)
    table.insert(table.columns.get_loc("n_missing") + 1, "best", False)
    if len(table):
        best = table.sort_values(["errors", "n_missing", "eps_km", "min_weight_scale", "method"],
                                 kind="mergesort").index[0]
        table.loc[best, "best"] = True
    return table


def plot_consistency(table: pd.DataFrame, ax) -> None:
    """Merged and split pairs per setting as stacked bars on ``ax`` (missing cities as dots),
    the best marked.

    Parameters
    ----------
    table : DataFrame
        :func:`consistency_table` output.
    ax : matplotlib.axes.Axes
        Where to draw.

    Returns
    -------
    None
    """
    labels = [f"{m} {e:g} km x{s:g}" for m, e, s in zip(table["method"], table["eps_km"],
                                                        table["min_weight_scale"])]
    x = np.arange(len(table))
    merged = table["n_merged"].to_numpy()
    split = table["n_split"].to_numpy()
    ax.bar(x, merged, color="#d62728", label="merged (reference keeps apart)")
    ax.bar(x, split, bottom=merged, color="#1f77b4", label="split (reference keeps together)")
    ax.plot(x, table["n_missing"].to_numpy(), "k.", label="missing (no cluster within reach)")
    top = max(1, int((merged + split).max()), int(table["n_missing"].max()))
    for i in np.flatnonzero(table["best"].to_numpy()):
        ax.annotate("fewest errors", (x[i], merged[i] + split[i]), xytext=(x[i], merged[i] + split[i] + 0.25 * top),
                    ha="center", fontsize=8, arrowprops={"arrowstyle": "->", "color": "black"})
    ax.set_ylim(0, 1.35 * top)
    ax.set_xticks(x, labels, rotation=60, ha="right", fontsize=8)
    for i in np.flatnonzero(table["best"].to_numpy()):
        ax.get_xticklabels()[i].set_fontweight("bold")
    ax.set_ylabel("city pairs (dots: cities)")
    ax.set_title("Metro consistency with the reference (fewer is better)")
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)


def write_consistency(table: pd.DataFrame, out_dir, *, notice: str | None = None) -> list[str]:
    """``consistency.csv`` and ``consistency.png`` into ``out_dir``.

    Parameters
    ----------
    table : DataFrame
        :func:`consistency_table` output.
    out_dir : pathlib.Path
        An existing directory.
    notice : str, optional
        A line over the plot.

    Returns
    -------
    list of str
        The file names written.
    """
    from matplotlib.figure import Figure

    from cluster.outputs._text import write_csv

    write_csv(table, out_dir / "consistency.csv")
    fig = Figure(figsize=(max(6.0, 0.45 * len(table) + 2), 5), dpi=100)
    ax = fig.subplots()
    plot_consistency(table, ax)
    if notice:
        fig.suptitle(notice, fontsize=8)
    fig.savefig(out_dir / "consistency.png", metadata={"Software": None}, bbox_inches="tight")
    return ["consistency.csv", "consistency.png"]

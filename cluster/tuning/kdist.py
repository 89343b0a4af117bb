"""Weighted k-distance curve, to help choose the DBSCAN radius.

For each site of one metric: the great-circle distance (km) at which the cumulative
weight of its nearest sites of that metric (itself included, nearest first) reaches
``k_weight``. A site is core at radius ``eps_km`` exactly when its k-distance with
``k_weight`` = the metric's threshold is at most ``eps_km`` (up to the rounding of the
distance), so the sorted curve shows how many sites are core at every radius; the
"knee", where the curve leaves the dense plateau, is the classic choice of radius.
Sites whose metric has less than ``k_weight`` in total get an infinite distance.

Neighbours are found with a k-d tree on 3-D unit vectors (chord distance, which orders
points as the great-circle distance does), asking for more neighbours only for the
sites that have not yet reached ``k_weight``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cluster.engine.dbscan import CORE_RTOL
from cluster.engine.geo import EARTH_RADIUS_KM, unit_vectors


def chord_to_km(chord) -> np.ndarray:
    """Great-circle distance of a chord on the unit sphere.

    Parameters
    ----------
    chord : float or array-like
        Straight-line distance between unit vectors (0 to 2).

    Returns
    -------
    ndarray
        Distance in km on the sphere of radius :data:`cluster.engine.geo.EARTH_RADIUS_KM`.
    """
    return 2.0 * EARTH_RADIUS_KM * np.arcsin(np.clip(np.asarray(chord, dtype=float) / 2.0, 0.0, 1.0))


def weighted_kdist(lat, lon, weight, k_weight: float, *, k0: int = 16) -> np.ndarray:
    """Distance (km) at which each site's nearest sites (itself included) weigh ``k_weight``.

    Parameters
    ----------
    lat, lon, weight : array-like of shape (n,)
        Sites in degrees and their (positive) weights.
    k_weight : float
        Cumulative weight to reach, > 0.

    Returns
    -------
    ndarray of shape (n,)
        Distance in km (0 when a site alone weighs ``k_weight``); ``inf`` when all
        sites together weigh less.
    """
    from scipy.spatial import cKDTree

    if not k_weight > 0:
        raise ValueError(f"k_weight must be > 0, got {k_weight!r}")
    weight = np.asarray(weight, dtype=float)
    n = len(weight)
    out = np.full(n, np.inf)
    if n == 0 or weight.sum() < k_weight * (1.0 - CORE_RTOL):
        return out
    xyz = unit_vectors(lat, lon)
    tree = cKDTree(xyz)
    todo = np.arange(n)
    k = min(k0, n)
    while len(todo):
        dist, idx = tree.query(xyz[todo], k=k)
        dist, idx = dist.reshape(len(todo), -1), idx.reshape(len(todo), -1)
        cum = np.cumsum(weight[idx], axis=1)
        # The engine's core test, tolerance included, so "core iff k-distance <= eps_km".
        reached = cum[:, -1] >= k_weight * (1.0 - CORE_RTOL)
        first = np.argmax(cum >= k_weight * (1.0 - CORE_RTOL), axis=1)
        done = todo[reached]
        out[done] = chord_to_km(dist[reached, first[reached]])
        todo = todo[~reached]
        if k == n:
            break
        k = min(4 * k, n)
    return out


def kdist_table(sites: pd.DataFrame, metric: str, k_weight: float) -> pd.DataFrame:
    """``kdist.csv``: the metric's sites sorted by weighted k-distance, largest first.

    Parameters
    ----------
    sites : DataFrame
        Weighted sites.
    metric : str
        The metric whose sites are measured.
    k_weight : float
        Cumulative weight to reach (e.g. the metric's core threshold).

    Returns
    -------
    DataFrame
        ``order`` (1 = largest distance), ``lat``, ``lon``, ``weight``, ``kdist_km``.
    """
    s = sites[sites["metric"].astype(str) == metric]
    d = weighted_kdist(s["lat"].to_numpy(), s["lon"].to_numpy(), s["weight"].to_numpy(), k_weight)
    table = pd.DataFrame({"lat": s["lat"].to_numpy(), "lon": s["lon"].to_numpy(),
                          "weight": s["weight"].to_numpy(), "kdist_km": d})
    table = table.sort_values(["kdist_km", "lat", "lon"], ascending=[False, True, True], kind="mergesort")
    table.insert(0, "order", np.arange(1, len(table) + 1))
    return table.reset_index(drop=True)


def plot_kdist(table: pd.DataFrame, ax, *, eps_km: float | None = None, metric: str = "",
               k_weight: float | None = None) -> None:
    """Draw the sorted k-distance curve on ``ax`` (log-scale y in km), ``eps_km`` marked.

    Parameters
    ----------
    table : DataFrame
        :func:`kdist_table` output.
    ax : matplotlib.axes.Axes
        Where to draw.
    eps_km : float, optional
        Radius to mark, km, with the number of sites core at it.
    metric : str, optional
        Named in the title.
    k_weight : float, optional
        Named in the title.

    Returns
    -------
    None
    """
    d = table["kdist_km"].to_numpy()
    finite = np.isfinite(d) & (d > 0)
    ax.plot(table["order"].to_numpy()[finite], d[finite], lw=1.2, color="#1f77b4")
    ax.set_yscale("log")
    ax.set_xlabel("sites, sorted by k-distance (descending)")
    ax.set_ylabel("k-distance (km, log scale)")
    title = f"Weighted k-distance of {metric} sites" if metric else "Weighted k-distance"
    if k_weight is not None:
        title += f" (k_weight {k_weight:.4g})"
    ax.set_title(title)
    if eps_km is not None:
        core = int(np.sum(d <= eps_km))
        ax.axhline(eps_km, color="red", ls="--", lw=1,
                   label=f"eps_km = {eps_km:g} ({core:,} of {len(d):,} sites core)")
        ax.legend(loc="upper right")
    ax.grid(True, which="both", alpha=0.3)


def write_kdist(table: pd.DataFrame, out_dir, *, eps_km: float, metric: str, k_weight: float,
                notice: str | None = None) -> None:
    """Write ``kdist.csv`` and ``kdist.png`` into ``out_dir``.

    Parameters
    ----------
    table : DataFrame
        :func:`kdist_table` output.
    out_dir : pathlib.Path
        An existing directory (the command writes into a temporary one).
    eps_km : float
        Radius marked on the plot, km.
    metric : str
        The metric measured.
    k_weight : float
        The cumulative weight reached.
    notice : str, optional
        A line over the plot (e.g. the synthetic-data notice).

    Returns
    -------
    None
    """
    from matplotlib.figure import Figure

    from cluster.outputs._text import write_csv

    t = table.copy()
    t["kdist_km"] = t["kdist_km"].round(6)
    write_csv(t, out_dir / "kdist.csv")
    fig = Figure(figsize=(8, 5), dpi=100)  # not pyplot: no global state, no backend switch
    ax = fig.subplots()
    plot_kdist(table, ax, eps_km=eps_km, metric=metric, k_weight=k_weight)
    if notice:
        fig.suptitle(notice, fontsize=8)
    fig.savefig(out_dir / "kdist.png", metadata={"Software": None}, bbox_inches="tight")

"""Weighted k-distance curve, to help choose the DBSCAN radius.

For each site of one metric: the great-circle distance (km) at which the cumulative
weight of its nearest sites of that metric (itself included, nearest first) reaches
``k_weight``. A site is core at radius ``eps_km`` exactly when its k-distance with
``k_weight`` = the metric's threshold is at most ``eps_km`` (up to the rounding of the
distance), so the sorted curve shows how many sites are core at every radius; the
"knee", where the curve leaves the dense plateau, is the classic choice of radius.
Sites whose metric has less than ``k_weight`` in total get an infinite distance.

The curve is *weighted*: its x axis is the cumulative share of the metric's activity
(sites by increasing k-distance), not the number of sites. Counted by site, the tens of
thousands of small rural sites fill the axis and the curve has no knee; counted by
activity, the axis is where the activity is, and the curve reads "x % of the activity
lies at sites that are core at radius y".

The distances are the engine's core distances (:func:`cluster.engine.hdbscan.core_chords`,
a k-d tree on 3-D unit vectors), the very ones HDBSCAN* uses.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cluster.engine.geo import unit_vectors
from cluster.engine.hdbscan import chord_km, core_chords


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
    return chord_km(chord)


def weighted_kdist(lat, lon, weight, k_weight: float) -> np.ndarray:
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
    if not k_weight > 0:
        raise ValueError(f"k_weight must be > 0, got {k_weight!r}")
    weight = np.asarray(weight, dtype=float)
    if len(weight) == 0:
        return np.empty(0)
    chords = core_chords(unit_vectors(lat, lon), weight, k_weight)
    out = np.full(len(weight), np.inf)
    done = np.isfinite(chords)
    out[done] = chord_to_km(chords[done])
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
        ``order`` (1 = largest distance), ``lat``, ``lon``, ``weight``, ``kdist_km``,
        ``activity_pct``: percent of the metric's weight at sites whose k-distance is at
        most this one's (the weighted curve's x).
    """
    s = sites[sites["metric"].astype(str) == metric]
    d = weighted_kdist(s["lat"].to_numpy(), s["lon"].to_numpy(), s["weight"].to_numpy(), k_weight)
    table = pd.DataFrame({"lat": s["lat"].to_numpy(), "lon": s["lon"].to_numpy(),
                          "weight": s["weight"].to_numpy(), "kdist_km": d})
    table = table.sort_values(["kdist_km", "lat", "lon"], ascending=[False, True, True], kind="mergesort")
    table.insert(0, "order", np.arange(1, len(table) + 1))
    total = table["weight"].sum()
    # Ascending k-distance: the weight at or below each distance (ties share one value).
    up = table["weight"].to_numpy()[::-1].cumsum()[::-1]
    d = table["kdist_km"].to_numpy()
    first = np.r_[True, d[1:] != d[:-1]]  # first row of each run of equal distances
    up = up[np.maximum.accumulate(np.where(first, np.arange(len(d)), 0))]
    table["activity_pct"] = 100.0 * up / total if total > 0 else np.nan
    return table.reset_index(drop=True)


def plot_kdist(table: pd.DataFrame, ax, *, eps_km: float | None = None, metric: str = "",
               k_weight: float | None = None) -> None:
    """Draw the weighted k-distance curve on ``ax``: x = cumulative activity (%), y = km (log).

    Parameters
    ----------
    table : DataFrame
        :func:`kdist_table` output.
    ax : matplotlib.axes.Axes
        Where to draw.
    eps_km : float, optional
        Radius to mark, km, with the share of the activity core at it.
    metric : str, optional
        Named in the title.
    k_weight : float, optional
        Named in the title.

    Returns
    -------
    None
    """
    d = table["kdist_km"].to_numpy()[::-1]
    x = table["activity_pct"].to_numpy()[::-1]
    finite = np.isfinite(d) & (d > 0)
    ax.step(x[finite], d[finite], where="post", lw=1.2, color="#1f77b4")
    ax.set_yscale("log")
    ax.set_xlim(0, 100)
    if finite.any():
        ax.set_ylim(bottom=max(float(d[finite].min()), 0.1))
    zero = table["kdist_km"].to_numpy() == 0
    if zero.any():
        w = table["weight"].to_numpy()
        ax.text(0.01, 0.97, f"{100.0 * w[zero].sum() / max(w.sum(), 1e-300):.1f} % of the activity at sites "
                "that alone reach k_weight (k-distance 0, left of the curve)", transform=ax.transAxes,
                fontsize=8, va="top")
    ax.set_xlabel("activity at sites with k-distance up to y (% of the metric's weight)")
    ax.set_ylabel("k-distance (km, log scale)")
    title = f"Weighted k-distance of {metric} sites" if metric else "Weighted k-distance"
    if k_weight is not None:
        title += f" (k_weight {k_weight:.4g})"
    ax.set_title(title)
    if eps_km is not None:
        w = table["weight"].to_numpy()
        share = 100.0 * w[table["kdist_km"].to_numpy() <= eps_km].sum() / max(w.sum(), 1e-300)
        core = int(np.sum(d <= eps_km))
        ax.axhline(eps_km, color="red", ls="--", lw=1,
                   label=f"eps_km = {eps_km:g}: {share:.1f} % of the activity core ({core:,} of {len(d):,} sites)")
        ax.legend(loc="center left")
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
    t["activity_pct"] = t["activity_pct"].round(6)
    write_csv(t, out_dir / "kdist.csv")
    fig = Figure(figsize=(8, 5), dpi=100)  # not pyplot: no global state, no backend switch
    ax = fig.subplots()
    plot_kdist(table, ax, eps_km=eps_km, metric=metric, k_weight=k_weight)
    if notice:
        fig.suptitle(notice, fontsize=8)
    fig.savefig(out_dir / "kdist.png", metadata={"Software": None}, bbox_inches="tight")

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
``geonameid``. Column ``verified`` says whether a local copy of a GII source names the
cluster as grouped there (``yes``, source named in column ``source``) or the row was typed
from memory (``no``: 21 of 67 rows, among them Washington–Baltimore, Stuttgart, Frankfurt
and Basel; kept, flagged). A user file takes the same columns: ``name, lat, lon, group``.

A reference may instead be *metro polygons* (a GeoPackage, GeoJSON, Shapefile or
FlatGeobuf: US core-based statistical areas, EU functional urban areas), one metro per
polygon (rows sharing a name are one metro). Each metro's *clustered activity* (that of
the counted sites inside it, :func:`cluster.stages.ranking.site_activity`) is divided
among clusters; a cluster holds a *material share* of a metro when it has at least
``min_share`` (:data:`MATERIAL_SHARE`, 10 %) of it. Then (:func:`polygon_errors`):

* **merged**: two metros in both of which one cluster holds a material share;
* **split**: a metro in which k >= 2 clusters hold material shares (counted as the
  k (k - 1) / 2 pairs of its parts, as the city pairs above);
* **missing**: a metro with no clustered activity.

Where to get polygons (no network here, so none ship with the package; the addresses
were not re-checked offline, so look for the named layer on the page if one has moved):

* US CBSAs (metropolitan and micropolitan statistical areas): Census cartographic
  boundary files, https://www2.census.gov/geo/tiger/GENZ2023/shp/cb_2023_us_cbsa_500k.zip
  (or the full TIGER/Line layer under https://www2.census.gov/geo/tiger/TIGER2024/CBSA/),
  name column ``NAME``; combined statistical areas (``cb_2023_us_csa_500k.zip`` beside
  it) join Washington with Baltimore in one area;
* EU functional urban areas: Eurostat GISCO, Urban Audit, FUA layer
  (https://ec.europa.eu/eurostat/web/gisco/geodata), name column ``URAU_NAME``;
* worldwide FUAs: GHSL, https://ghsl.jrc.ec.europa.eu/ghs_fua.php
  (``GHS_FUA_UCDB2015_GLOBE_R2019A_54009_1K_V1_0``), name column ``eFUA_name``.

The name column is ``--reference-column`` (``name_column``); by default the first of
:data:`NAME_COLUMNS` the file has.

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

__all__ = ["BUILTIN", "MATERIAL_SHARE", "NAME_COLUMNS", "city_clusters", "consistency_table",
           "is_polygon_reference", "load_reference", "pair_errors", "plot_consistency", "polygon_errors"]

#: The built-in reference file, inside the package.
BUILTIN = "gii_metros.csv"
REFERENCE_COLUMNS = ("name", "lat", "lon", "group")
#: File suffixes read as metro polygons (anything else is a CSV of city points).
POLYGON_SUFFIXES = (".gpkg", ".geojson", ".json", ".shp", ".fgb", ".zip")
#: Name columns tried, in order, when a polygon reference names none: ours, TIGER's
#: (``NAME``), Eurostat's (``URAU_NAME``), GHSL's (``eFUA_name``).
NAME_COLUMNS = ("group", "name", "NAME", "URAU_NAME", "eFUA_name", "fua_name", "NAMELSAD")
#: Least share of a metro's clustered activity that a cluster must hold to count there.
MATERIAL_SHARE = 0.10


def load_reference(path: str | Path | None = None, *, name_column: str | None = None) -> pd.DataFrame:
    """Reference city points with a group label, or metro polygons.

    Parameters
    ----------
    path : str or Path, optional
        A CSV with columns ``name, lat, lon, group`` (more are kept; lines starting with
        ``#`` are comments), or a polygon file (suffix in :data:`POLYGON_SUFFIXES`, see
        :func:`load_polygon_reference`). None: the built-in GII reference.
    name_column : str, optional
        Polygon files only: the column naming each metro.

    Returns
    -------
    DataFrame
        ``name, lat, lon, group`` (and any other columns), one row per city; for
        polygons a GeoDataFrame ``name, geometry`` (:func:`load_polygon_reference`).

    Raises
    ------
    UserInputError
        When the file is missing, lacks a column, or holds a bad coordinate (naming the
        file, row and column).
    """
    if path is None:
        if name_column is not None:
            raise UserInputError("--reference-column names the column of a polygon --reference file; "
                                 "give that file too.")
        with resources.files("cluster.tuning").joinpath("data", BUILTIN).open("r", encoding="utf-8") as f:
            return pd.read_csv(f, comment="#")
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"{path}: reference file not found. Give a CSV of city points with "
                             f"columns {', '.join(REFERENCE_COLUMNS)}, or metro polygons "
                             f"({', '.join(POLYGON_SUFFIXES)}).")
    if path.suffix.lower() in POLYGON_SUFFIXES:
        return load_polygon_reference(path, name_column)
    if name_column is not None:
        raise UserInputError(f"{path}: --reference-column applies to polygon files "
                             f"({', '.join(POLYGON_SUFFIXES)}); a CSV reference uses its column group.")
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


def load_polygon_reference(path: str | Path, name_column: str | None = None):
    """Metro polygons from a GeoPackage, GeoJSON, Shapefile or FlatGeobuf (read by pyogrio).

    Parameters
    ----------
    path : str or Path
        The file (its first layer).
    name_column : str, optional
        The column naming each metro; default the first of :data:`NAME_COLUMNS` present.
        Rows sharing a name are one metro (their polygons joined).

    Returns
    -------
    GeoDataFrame
        ``name, geometry`` in EPSG:4326, one row per metro, in order of first appearance.
        A file without a CRS is taken as longitude/latitude when its bounds fit.

    Raises
    ------
    UserInputError
        When the file cannot be read, is empty, lacks the name column, or holds a row
        without a name or without a polygon (naming the file, row and column).
    """
    import geopandas as gpd

    path = Path(path)
    try:
        gdf = gpd.read_file(path, engine="pyogrio")
    except Exception as exc:  # pyogrio's errors name the driver's problem; ours names the fix
        raise UserInputError(f"{path}: cannot read it as metro polygons ({exc}). Give a GeoPackage, "
                             "GeoJSON, Shapefile or FlatGeobuf with one polygon per metro.") from exc
    if len(gdf) == 0:
        raise UserInputError(f"{path}: no features; give one polygon per metro.")
    columns = [c for c in gdf.columns if c != gdf.geometry.name]
    if name_column is None:
        name_column = next((c for c in NAME_COLUMNS if c in columns), None)
        if name_column is None:
            raise UserInputError(f"{path}: no name column ({', '.join(NAME_COLUMNS)}); choose the column "
                                 f"naming each metro with --reference-column (columns: "
                                 f"{', '.join(map(str, columns)) or 'none'}).")
    elif name_column not in columns:
        raise UserInputError(f"{path}: column {name_column!r} not found (--reference-column); columns: "
                             f"{', '.join(map(str, columns)) or 'none'}.")
    names = gdf[name_column]
    geom = gdf.geometry
    for i in range(len(gdf)):
        if pd.isna(names.iloc[i]) or str(names.iloc[i]).strip() == "":
            raise UserInputError(f"{path}: feature {i + 1}, column {name_column}: empty name; name every "
                                 "metro (or drop the feature).")
        g = geom.iloc[i]
        if g is None or g.is_empty or g.geom_type not in ("Polygon", "MultiPolygon"):
            kind = "no geometry" if g is None or g.is_empty else f"a {g.geom_type}"
            raise UserInputError(f"{path}: feature {i + 1} ({names.iloc[i]}), column {geom.name}: {kind}, "
                                 "not a polygon; a metro reference holds (multi)polygons (city points go "
                                 "in a CSV with columns name, lat, lon, group).")
    if gdf.crs is None:
        x0, y0, x1, y1 = gdf.total_bounds
        if not (-180 <= x0 and x1 <= 180 and -90 <= y0 and y1 <= 90):
            raise UserInputError(f"{path}: no coordinate reference system and coordinates outside "
                                 "longitude/latitude; save the file with its CRS (e.g. EPSG:4326).")
        gdf = gdf.set_crs(4326)
    gdf = gdf.to_crs(4326)
    out = gpd.GeoDataFrame({"name": names.astype(str).to_numpy()}, geometry=gdf.geometry.to_numpy(), crs=4326)
    if out["name"].duplicated().any():
        out = out.dissolve(by="name", sort=False, as_index=False)[["name", "geometry"]]
    return out.reset_index(drop=True)


def is_polygon_reference(reference: pd.DataFrame) -> bool:
    """Whether a loaded reference is metro polygons (else city points).

    Parameters
    ----------
    reference : DataFrame
        :func:`load_reference` output.

    Returns
    -------
    bool
    """
    return "geometry" in reference.columns and "lat" not in reference.columns


def polygon_errors(reference, sites: pd.DataFrame, inside: np.ndarray, activity: np.ndarray,
                   min_share: float = MATERIAL_SHARE) -> dict:
    """Merged and split metros of one clustering against metro polygons.

    Parameters
    ----------
    reference : GeoDataFrame
        :func:`load_polygon_reference` output.
    sites : DataFrame
        Sites (``lat``, ``lon`` in degrees).
    inside : ndarray of shape (n_sites,)
        Cluster each site counts towards, -1 for none (``Membership.inside``).
    activity : ndarray of shape (n_sites,)
        Each site's activity (:func:`cluster.stages.ranking.site_activity`).
    min_share : float, default=MATERIAL_SHARE
        Least share of a metro's clustered activity for a cluster to count there.

    Returns
    -------
    dict
        As :func:`pair_errors`: ``merged`` (``"A / B"``, metros in reference order),
        ``split`` (``"A (2 clusters: 61% / 35%)"``), ``missing`` (metros without
        clustered activity), ``n_merged``, ``n_split`` (pairs of a split metro's parts),
        ``n_missing``, ``errors``.
    """
    import shapely

    names = reference["name"].astype(str).to_numpy()
    inside = np.asarray(inside)
    counted = np.flatnonzero(inside >= 0)
    merged, split = [], []
    n_split = 0
    share = pd.Series(dtype=float)
    if len(counted) and len(reference):
        points = shapely.points(sites["lon"].to_numpy()[counted], sites["lat"].to_numpy()[counted])
        # Sites on a border count for both metros (a point in two overlapping polygons too).
        site_i, metro_i = shapely.STRtree(np.asarray(reference.geometry)).query(points, predicate="intersects")
        act = pd.DataFrame({"metro": metro_i, "cluster": inside[counted[site_i]],
                            "activity": np.asarray(activity, float)[counted[site_i]]})
        act = act.groupby(["metro", "cluster"], sort=True)["activity"].sum()
        total = act.groupby(level="metro").transform("sum")
        share = (act / total.where(total > 0)).dropna()
    material = share[share >= min_share * (1.0 - 1e-9)]  # a share of exactly 10 % counts
    clustered = set(share.index.get_level_values("metro")) if len(share) else set()
    for m, parts in material.groupby(level="metro", sort=True):
        k = len(parts)
        if k >= 2:
            n_split += k * (k - 1) // 2
            pct = " / ".join(f"{100 * v:.0f}%" for v in sorted(parts.to_numpy(), reverse=True))
            split.append(f"{names[m]} ({k} clusters: {pct})")
    pairs = set()
    for _, metros in material.reset_index().groupby("cluster", sort=True)["metro"]:
        ms = sorted(metros.tolist())
        pairs.update((a, b) for i, a in enumerate(ms) for b in ms[i + 1:])
    merged = [f"{names[a]} / {names[b]}" for a, b in sorted(pairs)]
    missing = [str(names[m]) for m in range(len(names)) if m not in clustered]
    return {"n_merged": len(merged), "n_split": n_split, "errors": len(merged) + n_split,
            "n_missing": len(missing), "merged": merged, "split": split, "missing": missing}


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
                      reach_km: float = 15.0, activity: np.ndarray | None = None,
                      min_share: float = MATERIAL_SHARE) -> pd.DataFrame:
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
        See :func:`city_clusters` (city points only).
    activity : ndarray of shape (n_sites,), optional
        Metro polygons only: each site's activity (default its ``weight``).
    min_share : float, default=MATERIAL_SHARE
        Metro polygons only: see :func:`polygon_errors`.

    Returns
    -------
    DataFrame
        ``method, eps_km, min_weight_scale, n_clusters, n_merged, n_split, errors,
        n_missing, best, merged, split, missing`` (pairs joined by ``"; "``), in the
        order of ``memberships``' keys, sorted.
    """
    rows = []
    polygons = is_polygon_reference(reference)
    if polygons and activity is None:
        activity = sites["weight"].to_numpy(float)
    for key in sorted(memberships):
        method, eps, scale = key
        mem = memberships[key]
        if polygons:
            res = polygon_errors(reference, sites, mem.inside, activity, min_share)
        else:
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
    ax.plot(x, table["n_missing"].to_numpy(), "k.", label="missing (no cluster there)")
    top = max(1, int((merged + split).max()), int(table["n_missing"].max()))
    for i in np.flatnonzero(table["best"].to_numpy()):
        ax.annotate("fewest errors", (x[i], merged[i] + split[i]), xytext=(x[i], merged[i] + split[i] + 0.25 * top),
                    ha="center", fontsize=8, arrowprops={"arrowstyle": "->", "color": "black"})
    ax.set_ylim(0, 1.35 * top)
    ax.set_xticks(x, labels, rotation=60, ha="right", fontsize=8)
    for i in np.flatnonzero(table["best"].to_numpy()):
        ax.get_xticklabels()[i].set_fontweight("bold")
    ax.set_ylabel("pairs (dots: missing cities or metros)")
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

"""The unit table: one row per cluster, every column an indicator can draw on.

Sources, in order:

1. **The run's outputs** (``ranking.csv``, ``clusters.gpkg`` layers ``clusters`` and
   ``sites``, ``run.json``), or a clusters GeoDataFrame in memory: counts per metric,
   ``share_<metric>`` (percent of the world), ``score``, ``population``,
   ``<metric>_per_million``, ``intensity_score``, ``n_sites``.
2. **Derived here**: ``area_km2`` (geodesic area of the boundary on the WGS84 ellipsoid,
   :class:`pyproj.Geod`), ``population_density`` (inhabitants per km²), ``n_economies``,
   and from the ``sites`` layer, per metric, ``sites_<metric>`` (weighted sites in the
   cluster) and ``hhi_<metric>``, the Herfindahl-Hirschman concentration of the metric's
   activity over the cluster's sites (sum of squared shares, 0-1; 1 = all at one site).
   The run's outputs carry no institutions, so site concentration is the proxy the
   pipeline can give; true institutional concentration comes from a user table with an
   institution column (``hhi:institution``, below).
3. **User tables** (``[[table]]`` in the framework, files given by path or ``--table
   NAME=FILE``): ``csv`` keyed by cluster id (columns joined as they are: external
   statistics, or growth between two editions, ``--compare``); ``points`` (lat/lon
   columns, or a GeoPackage/GeoParquet of points) and ``polygons`` joined in space to the
   cluster boundaries and aggregated per cluster: ``count``, ``sum``, ``max``, ``min``,
   ``mean`` or ``nunique`` (distinct values) of a column, or ``hhi`` (concentration of the points over a column's
   categories). A point counts for a cluster when it lies inside the boundary; a polygon
   when its representative point does. Clusters with no point get 0 for count, sum and nunique
   and a missing value for max, min, mean and hhi.

Indicators are then ``column / denominator × scale`` (e.g. ``denominator =
"population"``, ``scale = 1e6``: per million inhabitants); a zero denominator gives a
missing value.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from cluster.stages.boundaries import cluster_area_km2

from ..errors import UserInputError
from ..provenance import table_is_synthetic
from .framework import Framework, Table

log = logging.getLogger(__name__)

KEY = "cluster_id"


def load_run(run_dir: str | Path) -> dict:
    """Read a run's output directory.

    Parameters
    ----------
    run_dir : str or Path
        A directory written by ``cluster run`` (``ranking.csv``, ``clusters.gpkg`` or
        ``clusters.parquet``, ``run.json``).

    Returns
    -------
    dict
        ``ranking`` (DataFrame), ``clusters`` (GeoDataFrame, EPSG:4326), ``sites``
        (GeoDataFrame or None), ``info`` (run.json as a dict, or {}).
    """
    import geopandas as gpd

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserInputError(f"Run directory {run_dir} not found. Give the --out directory of `cluster run`.")
    ranking_path = run_dir / "ranking.csv"
    if not ranking_path.is_file():
        raise UserInputError(
            f"{ranking_path} not found: {run_dir} is not an output directory of `cluster run`. "
            "Run `cluster run --out DIR` first and give that DIR."
        )
    ranking = pd.read_csv(ranking_path, dtype={KEY: str})
    if KEY not in ranking.columns:
        raise UserInputError(f"{ranking_path} has no column '{KEY}'. Give the ranking.csv of `cluster run`.")
    clusters, sites = None, None
    gpkg, parquet = run_dir / "clusters.gpkg", run_dir / "clusters.parquet"
    if gpkg.is_file():
        import pyogrio

        layers = {str(name) for name, _ in pyogrio.list_layers(gpkg)}
        clusters = gpd.read_file(gpkg, layer="clusters", engine="pyogrio")
        if "sites" in layers:
            sites = gpd.read_file(gpkg, layer="sites", engine="pyogrio", columns=[KEY, "metric", "weight"])
    elif parquet.is_file():
        clusters = gpd.read_parquet(parquet)
    else:
        raise UserInputError(
            f"Neither clusters.gpkg nor clusters.parquet in {run_dir}: the boundaries are "
            "needed for areas and spatial joins. Rerun `cluster run`."
        )
    if KEY in clusters.columns and clusters[KEY].is_unique:
        # ranking.csv quotes text cells a spreadsheet would run as formulas
        # (cluster.outputs._text.csv_safe); the layer holds the text itself.
        by_id = clusters.set_index(KEY)
        for col in ranking.columns:
            if col != KEY and col in by_id.columns and not pd.api.types.is_numeric_dtype(ranking[col]) \
                    and not pd.api.types.is_numeric_dtype(by_id[col]) and col != by_id.geometry.name:
                ranking[col] = ranking[KEY].map(by_id[col])
    info = {}
    if (run_dir / "run.json").is_file():
        info = json.loads((run_dir / "run.json").read_text("utf-8"))
    return {"ranking": ranking, "clusters": clusters, "sites": sites, "info": info, "path": str(run_dir)}


def metrics_of(columns) -> list[str]:
    """Metric names present in a ranking table (from its ``share_<metric>`` columns).

    Parameters
    ----------
    columns : iterable of str
        Column names of a run's ranking table.

    Returns
    -------
    list of str
        Metric names with a ``share_<metric>`` column.
    """
    return [c[6:] for c in columns if c.startswith("share_")]


def base_table(clusters, ranking: pd.DataFrame | None = None, sites=None, *, top_n: int = 0) -> pd.DataFrame:
    """Units (clusters) with the pipeline's columns and the derived ones (module docstring).

    Parameters
    ----------
    clusters : geopandas.GeoDataFrame
        Cluster boundaries with at least ``cluster_id`` (EPSG:4326); ranking columns are
        taken from here when ``ranking`` is None.
    ranking : DataFrame, optional
        ``ranking.csv``; its columns win over those of ``clusters``.
    sites : GeoDataFrame or DataFrame, optional
        The ``sites`` layer (``cluster_id``, ``metric``, ``weight``).
    top_n : int
        Keep the first ``top_n`` clusters by ``rank`` (0: all).

    Returns
    -------
    DataFrame
        Indexed by ``cluster_id`` in rank order, with a ``geometry`` column.
    """
    if KEY not in clusters.columns:
        raise UserInputError(f"The clusters table has no '{KEY}' column. Give the clusters layer of `cluster run`.")
    if clusters.crs is not None and clusters.crs.to_epsg() != 4326:
        clusters = clusters.to_crs(4326)
    geom = clusters.set_index(KEY).geometry
    if ranking is None:
        ranking = pd.DataFrame(clusters.drop(columns=clusters.geometry.name))
    df = ranking.copy()
    if "rank" in df.columns:
        df = df.sort_values(["rank", KEY], kind="mergesort")
        if top_n:
            df = df[df["rank"] <= top_n]
    elif top_n:
        df = df.head(top_n)
    df = df.set_index(KEY)
    missing = df.index.difference(geom.index)
    if len(missing):
        raise UserInputError(
            f"{len(missing)} cluster(s) of the ranking have no boundary (e.g. {missing[0]}). "
            "Give the ranking.csv and clusters layer of the same run."
        )
    df["geometry"] = geom.reindex(df.index).to_numpy()
    if "area_km2" not in df.columns:  # runs before area_km2 was an output column
        df["area_km2"] = cluster_area_km2(list(df["geometry"]))
    if "population" in df.columns:
        df["population_density"] = df["population"] / df["area_km2"].where(df["area_km2"] > 0)
    if "economies" in df.columns:
        df["n_economies"] = df["economies"].fillna("").astype(str).map(lambda s: len([e for e in s.split("/") if e]))
        df["economy"] = df["economies"].fillna("").astype(str).str.split("/").str[0]
    if sites is not None and len(sites):
        s = pd.DataFrame({KEY: sites[KEY], "metric": sites["metric"], "weight": sites["weight"]})
        s = s[s[KEY].isin(df.index)]
        for metric, part in s.groupby("metric", sort=True):
            tot = part.groupby(KEY)["weight"].transform("sum")
            share2 = (part["weight"] / tot) ** 2
            df[f"sites_{metric}"] = part.groupby(KEY).size().reindex(df.index).fillna(0).astype(float)
            df[f"hhi_{metric}"] = share2.groupby(part[KEY]).sum().reindex(df.index)
    return df


def _read_table(path: Path, table: Table):
    """Read a user table file: CSV, Parquet/GeoParquet or any OGR vector format."""
    import geopandas as gpd

    if not path.is_file():
        raise UserInputError(
            f"Table '{table.name}': file {path} not found. Fix the path in the framework "
            f"or give --table {table.name}=FILE."
        )
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".txt"):
            return pd.read_csv(path, dtype={table.key: str} if table.kind == "csv" else None)
        if suffix == ".parquet":
            try:
                return gpd.read_parquet(path)
            except (ValueError, KeyError):
                return pd.read_parquet(path)
        return gpd.read_file(path, engine="pyogrio")
    except (UnicodeDecodeError, pd.errors.ParserError, OSError, ValueError) as exc:
        raise UserInputError(
            f"Table '{table.name}': cannot read {path} ({exc}). Give a UTF-8 CSV with a header, "
            "a Parquet/GeoParquet file or a GeoPackage."
        ) from None


def _points(raw, path: Path, table: Table):
    """User points (or polygons' representative points) as a GeoDataFrame in EPSG:4326."""
    import geopandas as gpd

    if isinstance(raw, gpd.GeoDataFrame) and raw.geometry.name in raw.columns:
        g = raw.to_crs(4326) if raw.crs is not None and raw.crs.to_epsg() != 4326 else raw
        if table.kind == "polygons":
            g = g.set_geometry(g.geometry.representative_point())
        return g
    if table.kind == "polygons":
        raise UserInputError(
            f"Table '{table.name}': {path} has no polygon geometry. Give a GeoPackage, "
            'GeoJSON or GeoParquet of polygons, or use kind = "points" with lat/lon columns.'
        )
    problems = []
    for col in (table.lat, table.lon):
        if col not in raw.columns:
            problems.append(
                f"column '{col}' missing (columns: {', '.join(map(str, raw.columns))}); "
                f"set lat/lon in the [[table]] entry"
            )
    if problems:
        raise UserInputError(f"Table '{table.name}' ({path}): " + "; ".join(problems) + ".")
    lat = pd.to_numeric(raw[table.lat], errors="coerce")
    lon = pd.to_numeric(raw[table.lon], errors="coerce")
    bad = ~(lat.between(-90, 90) & lon.between(-180, 360))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0]) + 2
        raise UserInputError(
            f"Table '{table.name}' ({path}): {int(bad.sum())} row(s) with missing or out-of-range "
            f"coordinates, first at row {row} ({table.lat}={raw[table.lat].iloc[row - 2]!r}, "
            f"{table.lon}={raw[table.lon].iloc[row - 2]!r}). Give WGS84 degrees or remove them."
        )
    lon = ((lon + 180) % 360) - 180
    return gpd.GeoDataFrame(raw, geometry=gpd.points_from_xy(lon, lat), crs=4326)


def join_table(units: pd.DataFrame, table: Table, path: str | Path) -> pd.DataFrame:
    """The columns a user table adds to ``units`` (same index), see the module docstring.

    Parameters
    ----------
    units : DataFrame
        The unit table (index ``cluster_id``, ``geometry`` column in EPSG:4326).
    table : Table
        The framework's ``[[table]]`` entry.
    path : str or Path
        The file to read.

    Returns
    -------
    DataFrame
        New columns, indexed like ``units``.
    """
    import geopandas as gpd

    path = Path(path)
    raw = _read_table(path, table)
    if table.kind == "csv":
        if table.key not in raw.columns:
            raise UserInputError(
                f"Table '{table.name}' ({path}): no key column '{table.key}' (columns: "
                f'{", ".join(map(str, raw.columns))}). Add it, or set key = "COLUMN".'
            )
        keys = raw[table.key].astype(str)
        dup = keys.duplicated(keep=False)
        if dup.any():
            rows = ", ".join(str(r + 2) for r in np.flatnonzero(dup.to_numpy())[:5])
            raise UserInputError(
                f"Table '{table.name}' ({path}): {table.key} repeated (rows {rows}). Give one row per cluster."
            )
        unknown = ~keys.isin(units.index)
        if unknown.any():
            log.info("table %s: %d row(s) for clusters not among the units (ignored)", table.name, int(unknown.sum()))
        out = raw.drop(columns=[table.key]).set_axis(keys, axis=0).reindex(units.index)
        clash = [c for c in out.columns if c in units.columns]
        if clash:
            raise UserInputError(
                f"Table '{table.name}' ({path}): column(s) {', '.join(clash)} already exist in the "
                "unit table. Rename them in the file."
            )
        return out
    pts = _points(raw, path, table)
    problems = []
    for col, how, src in table.aggregate:
        if how != "count" and src not in pts.columns:
            problems.append(
                f"aggregate.{col} uses column '{src}', which {path} does not have "
                f"(columns: {', '.join(c for c in map(str, pts.columns) if c != 'geometry')})"
            )
        elif how not in ("count", "hhi", "nunique"):
            values = pd.to_numeric(pts[src], errors="coerce")
            bad = values.isna() & pts[src].notna()
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0]) + 2
                problems.append(f"column '{src}' must be numeric for {how}; row {row} has {pts[src].iloc[row - 2]!r}")
        if col in units.columns:
            problems.append(f"aggregate.{col}: a column of that name already exists; choose another name")
    if problems:
        raise UserInputError(f"Table '{table.name}': " + "; ".join(problems) + ". Fix the file or the [[table]] entry.")
    poly = gpd.GeoDataFrame({KEY: units.index.to_numpy()}, geometry=list(units["geometry"]), crs=4326)
    joined = gpd.sjoin(pts, poly, predicate="within", how="inner")
    out = pd.DataFrame(index=units.index)
    by = joined.groupby(KEY)
    for col, how, src in table.aggregate:
        if how == "count":
            s = by.size().astype(float)
        elif how == "nunique":
            s = by[src].nunique().astype(float)
        elif how == "hhi":
            counts = joined.groupby([KEY, src]).size()
            shares = counts / counts.groupby(level=0).transform("sum")
            s = (shares**2).groupby(level=0).sum()
        else:
            s = pd.to_numeric(joined[src], errors="coerce").groupby(joined[KEY]).agg(how)
        s = s.reindex(units.index)
        # No point inside: a count or sum is 0; a max/min/mean or a concentration is undefined.
        out[col] = s.fillna(0.0) if how in ("count", "sum", "nunique") else s
    log.info("table %s: %d of %d point(s) inside the units' boundaries", table.name, len(joined), len(pts))
    return out


def unit_table(
    framework: Framework,
    clusters,
    ranking=None,
    sites=None,
    *,
    tables: dict | None = None,
    compare: str | Path | None = None,
    base_dir: str | Path | None = None,
) -> pd.DataFrame:
    """The full unit table for ``framework``: base columns plus every user table.

    Parameters
    ----------
    framework : Framework
    clusters, ranking, sites
        See :func:`base_table`.
    tables : dict, optional
        ``name -> file`` given on the command line; overrides the framework's ``path``.
    compare : str or Path, optional
        A CSV keyed by ``cluster_id`` with growth columns (the output of a comparison of two
        editions); joined like a ``csv`` user table named ``compare``.
    base_dir : str or Path, optional
        Directory that relative table paths in the framework are resolved against
        (default: the framework file's directory).

    Returns
    -------
    DataFrame
        Indexed by ``cluster_id``; ``attrs["tables"]`` lists the tables joined and their files,
        ``attrs["synthetic_tables"]`` those marked synthetic
        (:func:`cluster.provenance.table_is_synthetic`).
    """
    tables = dict(tables or {})
    synthetic = []
    known = {t.name for t in framework.tables}
    for name in tables:
        if name not in known:
            raise UserInputError(
                f"--table {name}=...: the framework has no [[table]] named '{name}' "
                f"(tables: {', '.join(sorted(known)) or 'none'}). Check the name."
            )
    units = base_table(clusters, ranking, sites, top_n=framework.top_n)
    base = Path(base_dir) if base_dir else Path(framework.source).parent
    joined = {}
    entries = list(framework.tables)
    if compare is not None:
        entries.append(Table(name="compare", kind="csv", path=str(compare)))
        tables["compare"] = str(compare)
    for t in entries:
        path = tables.get(t.name) or t.path
        if not path:
            log.warning("table %s: no file given (use --table %s=FILE); its columns are absent", t.name, t.name)
            continue
        p = Path(path)
        if not p.is_absolute() and t.name not in tables:
            p = base / p
        new = join_table(units, t, p)
        units = pd.concat([units, new], axis=1)
        joined[t.name] = str(p)
        if table_is_synthetic(p):
            synthetic.append(t.name)
    units.attrs["tables"] = joined
    units.attrs["synthetic_tables"] = synthetic
    return units


def check_columns(framework: Framework, units: pd.DataFrame) -> tuple[Framework, list[str]]:
    """Check that every indicator's column and denominator exist and are numeric.

    Optional indicators whose column is absent are left out (returned in the list, with the
    reason); for any other, a :class:`~cluster.errors.UserInputError` names the indicator,
    the column, the columns available and the fix.

    Parameters
    ----------
    framework : Framework
        The parsed framework.
    units : DataFrame
        One row per cluster (``cluster_id``, ``name``, ``economies``).

    Returns
    -------
    tuple
        The framework without indicators whose columns are missing, and the notes saying so.
    """
    import difflib

    problems, dropped = [], []
    numeric = [c for c in units.columns if c != "geometry" and pd.api.types.is_numeric_dtype(units[c])]
    for ind in framework.indicators:
        for role, col in (("column", ind.column), ("denominator", ind.denominator)):
            if not col:
                continue
            if col not in units.columns:
                if ind.optional:
                    dropped.append((ind.code, f"{role} '{col}' absent"))
                    break
                near = difflib.get_close_matches(col, numeric, n=1)
                hint = f"Did you mean '{near[0]}'? " if near else ""
                problems.append(
                    f"indicator '{ind.code}': {role} '{col}' is not in the unit table. {hint}"
                    f"Use one of: {', '.join(numeric)}; or give the table that provides it "
                    "(--table NAME=FILE); or set optional = true to leave it out when absent."
                )
                break
            if not pd.api.types.is_numeric_dtype(units[col]):
                problems.append(f"indicator '{ind.code}': {role} '{col}' is not numeric. Choose a numeric column.")
                break
    if problems:
        raise UserInputError(
            f"{len(problems)} problem(s) with framework {framework.source}:\n" + "\n".join(f"  - {p}" for p in problems)
        )
    codes = [code for code, _ in dropped]
    fw = framework.without(codes)
    for code, why in dropped:
        log.warning("indicator %s left out: %s (optional)", code, why)
    empty = framework.empty_groups(codes)
    for code in empty:
        log.warning("group %s left out: none of its indicators has data", code)
    return fw, [f"{code}: {why}" for code, why in dropped] + [f"group {code}: no indicator with data" for code in empty]


def raw_indicators(framework: Framework, units: pd.DataFrame) -> pd.DataFrame:
    """Indicator values before treatment: ``column / denominator × scale`` per unit.

    Parameters
    ----------
    framework : Framework
        The parsed framework.
    units : DataFrame
        One row per cluster (``cluster_id``, ``name``, ``economies``).

    Returns
    -------
    DataFrame
        Units × indicators (framework order), float; a zero or missing denominator gives NaN.
    """
    out = {}
    for ind in framework.indicators:
        x = pd.to_numeric(units[ind.column], errors="coerce").astype(float)
        if ind.denominator:
            d = pd.to_numeric(units[ind.denominator], errors="coerce").astype(float)
            x = x / d.where(d != 0)
        out[ind.code] = x * ind.scale
    return pd.DataFrame(out, index=units.index)

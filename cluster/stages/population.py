"""Population inside cluster boundaries from a raster grid (``[population] source = "raster"``).

The default population (:func:`cluster.stages.places.population_inside`) sums GeoNames places
whose point lies inside a boundary. A population grid such as GHS-POP (JRC Global Human
Settlement Layer, people per cell) is the more careful source: each cell is counted in
proportion to the fraction of its area inside the boundary, so a cell half covered by a
cluster contributes half its people. The sum is exact for polygons (no sampling at cell
centres): ``exactextract`` computes each cell's coverage fraction from the polygon's
edges, and ``sum`` is ``Σ value × coverage`` over the cells the polygon touches.

The grid may be in any CRS (GHS-POP ships in Mollweide, ESRI:54009, and in WGS84):
boundaries, which are EPSG:4326 longitude/latitude split at the antimeridian, are
densified and reprojected to the raster's CRS first. Cells holding the raster's nodata
value are left out. Coverage fractions are planar in the raster's CRS, which for an
equal-area grid (Mollweide) is exact and for a WGS84 grid weights a cell's people by the
fraction of its degree-square covered (cells are small, so the difference is negligible).
"""

from __future__ import annotations

import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from cluster.errors import UserInputError

log = logging.getLogger(__name__)


def raster_population(geoms: list, raster_path: str | Path) -> np.ndarray:
    """Population of each boundary from a raster grid, rounded to whole inhabitants.

    Parameters
    ----------
    geoms : list of shapely geometries
        Boundaries in EPSG:4326.
    raster_path : path-like
        A GeoTIFF of inhabitants per cell, any CRS (e.g. GHS-POP).

    Returns
    -------
    ndarray of shape (n_boundaries,), int64
    """
    out = np.round(raster_sums(geoms, raster_path)).astype(np.int64)
    log.info("population of %d boundaries from raster %s (total %s)", len(geoms), raster_path, f"{out.sum():,}")
    return out


def raster_sums(geoms: list, raster_path: str | Path) -> np.ndarray:
    """Sum of the raster inside each boundary, every cell weighted by the fraction of its area inside.

    Parameters
    ----------
    geoms : list of shapely geometries
        Boundaries in EPSG:4326 (empty ones give 0).
    raster_path : path-like
        A georeferenced GeoTIFF; cells holding its nodata value are skipped.

    Returns
    -------
    ndarray of shape (n_boundaries,), float64

    Raises
    ------
    UserInputError
        When the file is missing, not a raster GDAL can read, or has no CRS.
    """
    try:
        import rasterio
        from exactextract import exact_extract
    except ImportError:
        message = ("Population from a raster grid ([population] source = \"raster\") needs rasterio and "
                   "exactextract, an optional extra: pip install 'innovation-clusters[raster]' "
                   "(or set [population] source = \"geonames\").")
        raise UserInputError(message) from None
    path = Path(raster_path)
    if not path.is_file():
        raise UserInputError(f"Population raster {path} does not exist. Set [population] raster_path "
                             "to a GeoTIFF population grid (e.g. GHS-POP) or use source = \"geonames\".")
    out = np.zeros(len(geoms), dtype=np.float64)
    if not geoms:
        return out
    try:
        src = rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise UserInputError(f"Population raster {path} cannot be read ({exc}). Give a GeoTIFF.") from None
    with src:
        if src.crs is None:
            raise UserInputError(f"Population raster {path} has no CRS. Give a georeferenced GeoTIFF.")
        frame = gpd.GeoDataFrame({"i": np.arange(len(geoms))}, geometry=list(geoms), crs="EPSG:4326")
        if not src.crs.to_epsg() == 4326:
            # Edges are straight in lon/lat; densify so they stay faithful after reprojection.
            frame["geometry"] = shapely.segmentize(frame.geometry.values, 0.01)
            frame = frame.to_crs(src.crs)
        nonempty = ~frame.geometry.is_empty
        if nonempty.any():
            sums = exact_extract(src, frame[nonempty], "sum", include_cols=["i"], output="pandas")
            values = np.nan_to_num(sums["sum"].to_numpy(dtype=float))
            out[sums["i"].to_numpy()] = values
    return out

"""Population from a raster grid: exact coverage-weighted sums on a generated GeoTIFF."""

import dataclasses

import numpy as np
import pytest
from helpers import make_records, offsets_km
from shapely.geometry import box

from cluster.cli import main
from cluster.config import load_config
from cluster.errors import ConfigError
from cluster.ingest.read import validate_frame
from cluster.pipeline import cluster_records
from cluster.stages.boundaries import cluster_polygon
from cluster.stages.population import raster_population, raster_sums

# The optional extra [raster] (make test installs it); without it, see test_packaging.py.
rasterio = pytest.importorskip("rasterio")
Affine = pytest.importorskip("affine").Affine

CELL = 0.01  # degrees


def _grid(path, *, value=1.0, west=11.0, north=49.0, width=120, height=120, nodata=None, crs="EPSG:4326",
          cell=CELL):
    """GeoTIFF of ``value`` people per cell (EPSG:4326, 0.01 degree cells) over Munich."""
    data = np.full((height, width), value, dtype="float32")
    if nodata is not None:
        data[:, : width // 2] = nodata
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=1, dtype="float32",
                       crs=crs, transform=Affine(cell, 0.0, west, 0.0, -cell, north), nodata=nodata) as dst:
        dst.write(data, 1)
    return path


def test_whole_and_partial_cells(tmp_path):
    tif = _grid(tmp_path / "pop.tif")
    geoms = [
        box(11.10, 48.50, 11.20, 48.60),    # 10 x 10 whole cells
        box(11.10, 48.50, 11.105, 48.51),   # one cell, half covered
        box(11.10, 48.50, 11.2025, 48.60),  # 10 x 10 cells and a column a quarter covered
        box(20.0, 20.0, 20.1, 20.1),        # off the grid
    ]
    np.testing.assert_allclose(raster_sums(geoms, tif), [100.0, 0.5, 102.5, 0.0], atol=1e-6)
    assert raster_population(geoms, tif).tolist() == [100, 0, 102, 0]  # rounded half to even


def test_cluster_polygon_sum_equals_its_area_in_cells(tmp_path):
    tif = _grid(tmp_path / "pop.tif", value=1.0)
    g = cluster_polygon([48.50, 48.52, 48.55], [11.50, 11.53, 11.55], 5.0, 32)
    assert raster_sums([g], tif)[0] == pytest.approx(g.area / CELL ** 2, rel=1e-6)


def test_nodata_cells_are_left_out(tmp_path):
    tif = _grid(tmp_path / "pop.tif", value=2.0, nodata=-200.0)  # west half nodata
    whole = box(11.0, 48.5, 12.2, 48.6)  # 120 x 10 cells, 60 x 10 with data
    assert raster_sums([whole], tif)[0] == pytest.approx(2.0 * 600)


def test_projected_raster(tmp_path):
    """A grid in another CRS (Web Mercator here; GHS-POP ships in Mollweide) is handled by
    reprojecting the boundaries: a 1 km grid of 1 person per cell gives the polygon's
    Mercator area in km^2."""
    from pyproj import Transformer

    x0, y0 = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True).transform(11.0, 49.0)
    tif = _grid(tmp_path / "merc.tif", west=x0, north=y0, width=200, height=200, crs="EPSG:3857", cell=1000.0)
    g = box(11.2, 48.2, 11.4, 48.4)
    import geopandas as gpd
    import shapely

    merc = gpd.GeoSeries([shapely.segmentize(g, 0.01)], crs="EPSG:4326").to_crs("EPSG:3857").iloc[0]
    assert raster_sums([g], tif)[0] == pytest.approx(merc.area / 1e6, rel=1e-6)


def test_pipeline_uses_the_raster_when_configured(tmp_path):
    tif = _grid(tmp_path / "pop.tif", value=3.0)
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[population]\nsource = "raster"\nraster_path = "{tif}"\n'
                   "[metrics.patents]\nmin_weight = 3\n")
    config = load_config(cfg)
    pts = [offsets_km(48.50, 11.50, *xy) for xy in [(0, 0), (3, 0), (6, 2)]]
    records = validate_frame(make_records(pts, "patents", per_site=2), "<t>", ("patents",))
    clusters = cluster_records(records, config).clusters
    g = clusters.geometry.iloc[0]
    assert clusters["population"].iloc[0] == round(3.0 * g.area / CELL ** 2)
    geonames = cluster_records(records, dataclasses.replace(config, population_source="geonames")).clusters
    assert geonames["population"].iloc[0] != clusters["population"].iloc[0]


def test_raster_config_errors(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[population]\nsource = "raster"\n')
    with pytest.raises(ConfigError, match="raster_path"):
        load_config(cfg)
    cfg.write_text('[population]\nsource = "raster"\nraster_path = "/nonexistent/pop.tif"\n'
                   "[metrics.patents]\nmin_weight = 3\n")
    records = tmp_path / "r.csv"
    make_records([(48.5, 11.5)], "patents", per_site=4).to_csv(records, index=False)
    assert main(["-q", "run", "--input", str(records), "--config", str(cfg), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err

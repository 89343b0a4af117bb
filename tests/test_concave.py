"""Boundary methods: discs (default) and concave hulls, on hand-built clusters."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import shapely
from helpers import make_records, offsets_km

from cluster.config import load_config
from cluster.errors import ConfigError
from cluster.ingest.read import validate_frame
from cluster.pipeline import cluster_records
from cluster.stages.boundaries import build_boundaries, cluster_polygon
from cluster.stages.concave import concave_polygon

METHODS = ["discs", "concave"]


def _ring_and_centre():
    """Cluster 0: sites every ~3 km on a 270-degree arc of radius 20 km around Munich
    (a 'C'); cluster 1: three sites at its centre, 20 km (> eps 10 km) from the arc.
    A concave hull of the C may bridge its mouth; the boundary must still leave the
    centre cluster out. Cluster 2: a straight line of sites (collinear: hull is a line)."""
    lat0, lon0 = 48.137, 11.575
    rows = []
    for a in np.radians(np.arange(0, 271, 8.0)):
        rows.append((0, *offsets_km(lat0, lon0, 20 * np.cos(a), 20 * np.sin(a))))
    for dx, dy in [(0, 0), (1, 0), (0, 1)]:
        rows.append((1, *offsets_km(lat0, lon0, dx, dy)))
    for k in range(6):
        rows.append((2, *offsets_km(50.0, 8.0, 3.0 * k, 0)))
    df = pd.DataFrame(rows, columns=["c", "lat", "lon"])
    return df


@pytest.mark.parametrize("method", METHODS)
def test_boundaries_hold_their_sites_and_no_others(method):
    df = _ring_and_centre()
    geoms = build_boundaries(df, df["c"].to_numpy(), 5.0, 32, method=method, threads=1)
    assert len(geoms) == 3
    for c, g in enumerate(geoms):
        assert g.is_valid and g.geom_type in ("Polygon", "MultiPolygon")
        own = df[df["c"] == c]
        other = df[df["c"] != c]
        assert shapely.contains_xy(g, own["lon"], own["lat"]).all(), (method, c)
        assert not shapely.contains_xy(g, other["lon"], other["lat"]).any(), (method, c)


def test_concave_is_tighter_than_discs():
    df = _ring_and_centre()
    discs = build_boundaries(df, df["c"].to_numpy(), 5.0, 32, method="discs", threads=1)
    concave = build_boundaries(df, df["c"].to_numpy(), 5.0, 32, method="concave", threads=1)
    for d, c in zip(discs, concave):
        assert c.area < d.area
        assert d.buffer(1e-9).contains(c)  # clipped to the disc footprint


@pytest.mark.parametrize("method", METHODS)
def test_antimeridian_split(method):
    lat = np.array([-17.0, -17.02, -17.05, -17.03])
    lon = np.array([179.97, -179.98, 179.99, -179.96])
    fn = cluster_polygon if method == "discs" else concave_polygon
    g = fn(lat, lon, 5.0, 32)
    assert g.is_valid and g.geom_type == "MultiPolygon" and len(g.geoms) == 2
    minx, _, maxx, _ = g.bounds
    assert minx == pytest.approx(-180) and maxx == pytest.approx(180)
    assert all(abs(p.bounds[2] - p.bounds[0]) < 1 for p in g.geoms)  # no part spans the globe
    assert shapely.contains_xy(g, lon, lat).all()
    moved = fn(lat, lon - 180.0, 5.0, 32)  # the same cluster away from the seam
    assert g.area == pytest.approx(moved.area, rel=1e-3)


def test_concave_near_a_pole_falls_back_to_a_cap():
    g = concave_polygon([89.98, 89.97], [45.0, 50.0], 20.0, 32)
    assert g.is_valid and g.bounds[3] == pytest.approx(90)
    assert g.equals(cluster_polygon([89.98, 89.97], [45.0, 50.0], 20.0, 32))


def test_single_site_concave_is_a_small_disc_around_it():
    g = concave_polygon([10.0], [10.0], 5.0, 32, margin_km=1.0)
    assert g.is_valid and g.contains(shapely.Point(10.0, 10.0))
    # about pi * 1 km^2 in degrees^2 at 10 N
    km2 = g.area * 111.195 ** 2 * np.cos(np.radians(10.0))
    assert km2 == pytest.approx(np.pi, rel=0.05)


def test_config_selects_the_method(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[boundaries]\nmethod = "concave"\nconcave_margin_km = 0.5\n'
                   "[metrics.patents]\nmin_weight = 3\n")
    config = load_config(cfg)
    assert config.boundary_method == "concave" and config.to_dict()["boundaries"]["method"] == "concave"
    pts = [offsets_km(48.137, 11.575, *xy) for xy in [(0, 0), (4, 0), (8, 1), (12, 0), (12, 4)]]
    records = validate_frame(make_records(pts, "patents", per_site=2), "<t>", ("patents",))
    concave = cluster_records(records, config).clusters
    discs = cluster_records(records, dataclasses.replace(config, boundary_method="discs")).clusters
    assert len(concave) == len(discs) == 1
    assert concave["patents"].iloc[0] == discs["patents"].iloc[0] == 10
    assert concave.geometry.iloc[0].area < discs.geometry.iloc[0].area
    bad = tmp_path / "bad.toml"
    bad.write_text('[boundaries]\nmethod = "hull"\n')
    with pytest.raises(ConfigError, match="discs"):
        load_config(bad)

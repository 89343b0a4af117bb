"""map.png: the Natural Earth basemap (TopoJSON decoding, antimeridian cut, vendored files
and their checksums) and labels that sit next to their clusters, never on one another."""

import hashlib
import json
from importlib import resources

import geopandas as gpd
import matplotlib
import numpy as np
import pytest
import shapely
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from shapely.geometry import Point

from cluster.outputs.basemap import basemap, cut_line, cut_polygon, decode_arcs, web_layers
from cluster.outputs.maps import crowded_regions, draw_basemap, draw_map, map_figure, plot_clusters


def test_vendored_files_match_the_manifest():
    vendor = resources.files("cluster.outputs").joinpath("vendor")
    manifest = json.loads(vendor.joinpath("manifest.json").read_text())
    names = {p["name"]: p for p in manifest["packages"]}
    assert names["leaflet"]["version"] == "1.9.4" and names["world-atlas"]["version"] == "2.0.2"
    for pkg in manifest["packages"]:
        assert pkg["integrity"].startswith("sha512-") and f"{pkg['name']}/LICENSE" in pkg["files"]
        for rel, meta in pkg["files"].items():
            data = vendor.joinpath(*rel.split("/")).read_bytes()
            assert hashlib.sha256(data).hexdigest() == meta["sha256"], rel
            assert len(data) == meta["bytes"]
    assert sum(m["bytes"] for p in manifest["packages"] for m in p["files"].values()) < 1_000_000


def test_topojson_decoding_by_hand():
    # Two squares sharing the arc 1 (x = 1), quantized with a scale of 0.5 and delta-encoded.
    topo = {"type": "Topology", "transform": {"scale": [0.5, 0.5], "translate": [10, 20]},
            "arcs": [[[2, 0], [-2, 0], [0, 2], [2, 0]],  # (1,0) (0,0) (0,1) (1,1) in units
                     [[2, 2], [0, -2]],  # (1,1) -> (1,0): the shared side
                     [[2, 0], [2, 0], [0, 2], [-2, 0]]],  # (1,0) (2,0) (2,1) (1,1)
            "objects": {"countries": {"type": "GeometryCollection", "geometries": [
                {"type": "Polygon", "arcs": [[0, 1]], "properties": {"name": "West"}},
                {"type": "Polygon", "arcs": [[2, -2]], "properties": {"name": "East"}}]},
                "land": {"type": "GeometryCollection", "geometries": [{"type": "Polygon", "arcs": [[0, ~2]]}]}}}
    arcs = decode_arcs(topo)
    np.testing.assert_allclose(arcs[1], [[11, 21], [11, 20]])
    from cluster.outputs.basemap import Basemap

    b = Basemap(topo)
    west, east = dict(b.countries)["West"], dict(b.countries)["East"]
    assert west.equals(shapely.box(10, 20, 11, 21)) and east.equals(shapely.box(11, 20, 12, 21))
    assert len(b.borders) == 1 and np.allclose(b.borders[0], [[11, 21], [11, 20]])
    assert len(b.coastlines) == 2 and b.land.area == pytest.approx(2.0)


def test_antimeridian_cut():
    parts = cut_line(np.array([[178.0, 10.0], [-178.0, 12.0], [-177.0, 12.0]]))
    assert len(parts) == 2
    np.testing.assert_allclose(parts[0][-1], [180, 11]) and np.testing.assert_allclose(parts[1][0], [-180, 11])
    ring = shapely.Polygon([(179, -17), (-179, -17), (-179, -16), (179, -16)])
    pieces = cut_polygon(ring)
    assert len(pieces) == 2 and sum(p.area for p in pieces) == pytest.approx(2.0)
    assert all(p.bounds[2] - p.bounds[0] <= 1 + 1e-9 for p in pieces)


def test_natural_earth_countries_are_where_they_belong():
    b = basemap()
    countries = dict(b.countries)
    assert len(countries) > 230
    # Chukotka lies on both sides of the antimeridian: both halves are kept.
    for name, lon, lat in [("France", 2.35, 48.86), ("Australia", 149.13, -35.28), ("Japan", 139.69, 35.69),
                           ("United States of America", -77.04, 38.91), ("Russia", 172.0, 67.0),
                           ("Russia", -175.0, 66.5), ("Russia", 37.6, 55.75),
                           ("Fiji", 178.0, -17.8), ("Brazil", -47.88, -15.79)]:
        assert countries[name].contains(Point(lon, lat)), name
    assert not countries["Germany"].contains(Point(2.35, 48.86))
    # Cut at the antimeridian: no line or ring jumps across the map.
    for line in b.borders + b.coastlines:
        assert np.abs(np.diff(line[:, 0])).max() < 180
    assert all(p.bounds[2] - p.bounds[0] < 360 - 1e-6 or p.bounds[1] < -60 for p in b.land.geoms)
    assert b.land.contains(Point(2.35, 48.86)) and not b.land.contains(Point(-30, 30))  # Atlantic
    web = web_layers()
    assert len(web["land"]) > 500 and len(web["borders"]) > 300
    assert len(json.dumps(web, separators=(",", ":"))) < 800_000


def _clusters(points):
    """Clusters in rank order at (name, lon, lat), score falling with rank."""
    n = len(points)
    return gpd.GeoDataFrame({
        "rank": np.arange(1, n + 1), "cluster_id": [f"g{i}" for i in range(n)],
        "name": [p[0] for p in points], "score": np.linspace(10, 1, n),
        "anchor_lon": [p[1] for p in points], "anchor_lat": [p[2] for p in points],
    }, geometry=[Point(p[1], p[2]).buffer(0.1) for p in points], crs="EPSG:4326")


# Twenty of Europe's and Asia's most crowded places, and a few far from them.
CROWD = [("Paris", 2.35, 48.86), ("London", -0.13, 51.51), ("Amsterdam–Rotterdam", 4.6, 52.2),
         ("Cologne–Düsseldorf", 6.9, 51.1), ("Brussels", 4.35, 50.85), ("Frankfurt", 8.68, 50.11),
         ("Stuttgart", 9.18, 48.78), ("Munich", 11.58, 48.14), ("Eindhoven", 5.47, 51.44),
         ("Zurich", 8.54, 47.37), ("Tokyo–Yokohama", 139.7, 35.7), ("Osaka–Kobe–Kyoto", 135.5, 34.7),
         ("Nagoya", 136.9, 35.2), ("Seoul", 127.0, 37.6), ("Beijing", 116.4, 39.9), ("Shanghai", 121.5, 31.2),
         ("Boston", -71.06, 42.36), ("Sydney", 151.2, -33.87), ("São Paulo", -46.6, -23.5),
         ("Bengaluru", 77.6, 12.97), ("Daejeon", 127.4, 36.35), ("Lyon", 4.83, 45.76)]


def _labels(fig):
    renderer = fig.canvas.get_renderer()
    out = []
    for ax in fig.axes:
        for t in ax.texts:
            if t.get_gid() == "cluster-label":
                out.append((ax, t, t.get_window_extent(renderer)))
    return out


def test_labels_never_overlap_nor_leave_their_frame():
    clusters = _clusters(CROWD)
    fig = map_figure(clusters, n_labels=20, notice="SYNTHETIC")
    labels = _labels(fig)
    texts = [t.get_text() for _, t, _ in labels]
    # the first twenty, and the panels' next top clusters (Daejeon in East Asia, Lyon in Europe)
    assert sorted(texts, key=lambda s: int(s.split(".")[0])) == [f"{i + 1}. {p[0]}" for i, p in enumerate(CROWD)]
    renderer = fig.canvas.get_renderer()
    for i, (ax, t, box) in enumerate(labels):
        frame = ax.get_window_extent(renderer)
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1, t.get_text()
        for _ax2, t2, box2 in labels[i + 1:]:
            assert not box.overlaps(box2), (t.get_text(), t2.get_text())
    # Each label is near its own cluster: beside it, or joined to it by a leader line.
    for ax, t, box in labels:
        rank = int(t.get_text().split(".")[0])
        row = clusters.iloc[rank - 1]
        px, py = ax.transData.transform((row["anchor_lon"], row["anchor_lat"]))
        gap = np.hypot(np.clip(px, box.x0, box.x1) - px, np.clip(py, box.y0, box.y1) - py)
        leaders = [ln for ln in ax.lines if ln.get_gid() == "leader"]
        ends = [ax.transData.transform(np.column_stack(ln.get_data())) for ln in leaders]
        joined = [e for e in ends if np.hypot(*(e[1] - [np.clip(e[1][0], box.x0, box.x1),
                                                           np.clip(e[1][1], box.y0, box.y1)])) < 1.5]
        assert gap < 25 or joined, t.get_text()
        for e in joined:  # the leader starts at this cluster's bubble
            assert np.hypot(e[0][0] - px, e[0][1] - py) < 20


def test_crowded_regions_get_panels():
    clusters = _clusters(CROWD)
    assert [name for name, _ in crowded_regions(clusters)] == ["Europe", "East Asia"]
    fig = map_figure(clusters)
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert "Europe" in titles and "East Asia" in titles and "North America" not in titles
    # Paris is labelled in the Europe panel, not on the world map; Sydney on the world map.
    where = {t.get_text(): ax.get_title(loc="left") for ax, t, _ in _labels(fig)}
    assert where["1. Paris"] == "Europe" and where["18. Sydney"] == ""
    scattered = _clusters([p for p in CROWD if p[0] in ("Paris", "Tokyo–Yokohama", "Boston", "Sydney")])
    assert crowded_regions(scattered) == []
    assert len(map_figure(scattered).axes) == 1  # the world map (its legend inside)


def _tiered(points, n_top=100):
    clusters = _clusters(points)
    clusters["tier"] = np.where(clusters["rank"] <= n_top, "top", "emerging")
    return clusters


# US-heavy data (as PatentsView with US venture deals): the first twenty are American or
# East Asian, Europe's clusters rank 21 and below.
US_HEAVY = ([(f"US city {i}", -120 + 2.5 * i, 33 + (i % 5) * 2.5) for i in range(14)]
            + [(f"JP city {i}", 130 + 2 * i, 33 + (i % 3)) for i in range(6)]
            + [("London", -0.13, 51.51), ("Paris", 2.35, 48.86), ("Munich", 11.58, 48.14),
               ("Stockholm", 18.07, 59.33), ("Lagos", 3.4, 6.45)])


def test_europe_gets_a_panel_when_it_holds_top_clusters_outside_the_first_twenty():
    clusters = _tiered(US_HEAVY)
    assert "Europe" in [name for name, _ in crowded_regions(clusters)]
    fig = map_figure(clusters, n_labels=20)
    where = {t.get_text(): ax.get_title(loc="left") for ax, t, _ in _labels(fig)}
    for name, rank in (("London", 21), ("Paris", 22), ("Munich", 23), ("Stockholm", 24)):
        assert where[f"{rank}. {name}"] == "Europe"
    assert "25. Lagos" not in where  # not in a panel, not among the first twenty


def test_emerging_clusters_do_not_make_a_panel():
    clusters = _tiered(US_HEAVY, n_top=20)
    assert "Europe" not in [name for name, _ in crowded_regions(clusters)]


def test_colour_classes_separate_the_top_tier():
    from cluster.outputs.maps import rank_classes

    n = 243
    clusters = _tiered([(f"c{i}", 0.0, 0.0) for i in range(n)])
    clusters["score"] = 36.0 / np.arange(1, n + 1) ** 1.3  # falls fast, as real scores do
    classes = rank_classes(clusters)
    assert [len(set(classes.index[a:b])) for a, b in ((0, 10), (10, 25), (25, 50), (50, 100), (100, n))] == [1] * 5
    assert list(classes.index[[0, 10, 25, 50, 100]]) == [0, 1, 2, 3, 4]
    assert classes.labels[0].startswith("ranks 1–10") and classes.labels[-1] == f"emerging, ranks 101–{n}"
    assert len({tuple(c) for c in classes.colours}) == 5
    # the old linear scale of the score gave ranks 11-100 nearly the same colour
    rgba = classes.rgba()
    assert not np.allclose(rgba[10], rgba[60], atol=0.05)
    # a small top tier: fewer classes, the first ones darkest
    small = rank_classes(_tiered([(f"c{i}", 0.0, 0.0) for i in range(8)], n_top=5))
    assert small.labels == ["ranks 1–5  (score ≥ 4.9)", "emerging, ranks 6–8"]  # linspace(10, 1, 8)[4]


def test_result_plot_places_labels_as_map_png(tmp_path):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    clusters = _tiered(US_HEAVY)
    png = map_figure(clusters, n_labels=20)
    fig = plt.figure()
    try:
        mine = map_figure(clusters, n_labels=20, fig=fig)

        def spots(f):
            return sorted((t.get_text(), ax.get_title(loc="left"), *np.round(t.get_position(), 6))
                          for ax, t, _ in _labels(f))
        assert spots(mine) == spots(png) and len(spots(png)) >= 20
    finally:
        plt.close(fig)


def test_plot_clusters_draws_borders_on_any_axes():
    fig = Figure(figsize=(10, 5))
    FigureCanvasAgg(fig)
    ax = plot_clusters(_clusters(CROWD[:5]), fig.subplots(), n_labels=5, notice=None, colorbar=False)
    assert ax.get_xlim() == (-180, 180)
    assert len(ax.collections) >= 4  # land, borders, coastlines, clusters, bubbles
    assert len([t for t in ax.texts if t.get_gid() == "cluster-label"]) == 5
    # The module leaves pyplot's state alone.
    assert matplotlib.get_backend() == matplotlib.rcParams["backend"]


def test_map_png_is_deterministic(tmp_path):
    clusters = _clusters(CROWD)
    draw_map(clusters, tmp_path / "a.png", notice=None)
    draw_map(clusters, tmp_path / "b.png", notice=None)
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_web_layers_cache_equals_the_derivation_and_survives_a_damaged_file(tmp_path, monkeypatch):
    from cluster.outputs import basemap as bm

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    bm.web_layers.cache_clear()
    try:
        derived = bm.derive_web_layers()
        first = bm.web_layers()  # derives and writes the cache
        (cached,) = (tmp_path / "innovation-clusters" / "basemap").glob("web-layers-*.json")
        bm.web_layers.cache_clear()
        assert first == derived and bm.web_layers() == derived  # read back from the file
        cached.write_text("{not json")
        bm.web_layers.cache_clear()
        assert bm.web_layers() == derived
        assert json.loads(cached.read_text()) == derived  # rewritten
    finally:
        bm.web_layers.cache_clear()


@pytest.mark.parametrize("extent", [(-180.0, 180.0, -58.0, 78.0), (-10.5, 30.0, 36.0, 60.0), (100.0, 145.5, 20.0, 45.5),
                                    (160.0, 180.0, -50.0, -30.0)])
def test_culled_basemap_draws_the_same_pixels(extent):
    # map.png leaves out the land, borders and coastlines wholly outside each axes: the
    # pixels must be those of the whole basemap, only drawn sooner.
    def pixels(cull):
        fig = Figure(figsize=(6, 4), dpi=110)
        FigureCanvasAgg(fig)
        ax = fig.add_axes([0.1, 0.1, 0.8, 0.8])
        draw_basemap(ax, extent, cull=cull)
        n_lines = sum(len(c.get_paths()) for c in ax.collections)
        fig.canvas.draw()
        return np.asarray(fig.canvas.buffer_rgba()).copy(), n_lines

    whole, n_whole = pixels(False)
    culled, n_culled = pixels(True)
    assert n_culled < n_whole  # something was left out (Antarctica on the world map)
    assert np.array_equal(whole, culled)
    assert (whole[..., :3] != whole[0, 0, :3]).any()  # not a blank picture


def test_basemap_paths_cache_equals_the_derivation_and_survives_a_damaged_file(tmp_path, monkeypatch):
    from cluster.outputs import maps

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    maps._basemap_arrays.cache_clear()
    try:
        derived = maps._derive_basemap_arrays()

        def same(a):
            return set(a) == set(derived) and all(np.array_equal(a[k], derived[k]) for k in derived)

        assert same(maps._basemap_arrays())  # derived and written
        (cached,) = (tmp_path / "innovation-clusters" / "basemap").glob("basemap-paths-*.npz")
        maps._basemap_arrays.cache_clear()
        assert same(maps._basemap_arrays())  # read back
        cached.write_bytes(cached.read_bytes()[:1000])
        maps._basemap_arrays.cache_clear()
        assert same(maps._basemap_arrays())  # damaged: derived again
        maps._basemap_arrays.cache_clear()
        assert same(maps._basemap_arrays())  # and rewritten
        # what the map draws: every polygon, border and coastline of the decoded basemap
        world = basemap()
        assert len(derived["land_bbox"]) == len(world.land.geoms)
        assert len(derived["borders_bbox"]) == len(world.borders)
        assert len(derived["coastlines_bbox"]) == len(world.coastlines)
    finally:
        maps._basemap_arrays.cache_clear()

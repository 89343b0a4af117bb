"""The static map leaves matplotlib's global state alone and draws on the axes it is given
(label placement is tested in test_maps.py)."""

import matplotlib
import numpy as np
import pytest
from shapely.geometry import box

from cluster.outputs.maps import draw_map, plot_clusters


def _clusters(n=30, seed=0):
    import geopandas as gpd

    rng = np.random.default_rng(seed)
    # Crowded on purpose: 30 clusters within a few degrees of Europe's centre.
    lat = 48 + rng.normal(0, 2, n)
    lon = 8 + rng.normal(0, 3, n)
    score = np.sort(rng.uniform(0.1, 5, n))[::-1]
    return gpd.GeoDataFrame({
        "rank": np.arange(1, n + 1), "cluster_id": [f"g{i:07d}" for i in range(n)],
        "name": [f"Place number {i}" for i in range(n)], "score": score,
        "anchor_lat": lat, "anchor_lon": lon,
    }, geometry=[box(x - 0.1, y - 0.1, x + 0.1, y + 0.1) for x, y in zip(lon, lat)], crs="EPSG:4326")


def test_writing_the_map_leaves_pyplot_and_the_backend_alone(tmp_path):
    import matplotlib.pyplot as plt

    backend, figures = matplotlib.get_backend(), plt.get_fignums()
    draw_map(_clusters(), tmp_path / "map.png", notice="test")
    assert (tmp_path / "map.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert matplotlib.get_backend() == backend
    assert plt.get_fignums() == figures


@pytest.mark.parametrize("n", [0, 1])
def test_plot_clusters_draws_on_the_given_axes(n):
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.subplots()
    assert plot_clusters(_clusters(n) if n else _clusters(1).iloc[:0], ax, colorbar=False) is ax
    assert ax.get_xlim() == (-180, 180)

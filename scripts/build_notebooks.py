"""Write notebooks/quickstart.ipynb and notebooks/tuning.ipynb from the cells below (source
only); scripts/run_notebooks.py then executes them in place, outputs included."""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
KERNEL = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
          "language_info": {"name": "python"}}

QUICKSTART = [
    new_markdown_cell("""# Quickstart: clusters from a notebook

`cluster.run(data, **parameters)` takes record files, a DataFrame or a GeoDataFrame of points and
returns a `RunResult`: the clusters as a GeoDataFrame in rank order, the weighted sites as points,
and what the run did (`info`). In a notebook a result shows its parameters, counts, warnings and
top 10; `.plot()` draws the map of `map.png`, `.explore()` the interactive map of `map.html` (offline),
and `.write(folder)` writes the GeoPackage, GeoParquet, CSV, Markdown and maps exactly as the
`cluster run` command does.

Here the data are the **synthetic demo world** (`cluster.demo.generate_demo`: invented documents on
real GeoNames places); every output derived from it says so."""),
    new_code_cell("""import os
import tempfile

import geopandas as gpd

import cluster
from cluster.demo import generate_demo

N_RECORDS = int(os.environ.get("QUICKSTART_RECORDS", "200000"))  # the tests use fewer
records = generate_demo(N_RECORDS, seed=0)
records.head()"""),
    new_markdown_cell("""## Run on a DataFrame

Columns as in a records file: `metric`, `doc_id` (a document at n locations counts 1/n at each),
`lat`/`lon` in degrees, optional `year`, `country`, `institution`. Keyword arguments override the
configuration: here a 15 km radius. The result shows itself: parameters, counts, warnings, the top 10."""),
    new_code_cell("""res = cluster.run(records, eps_km=15)
res"""),
    new_code_cell("""res.clusters[["rank", "name", "economies", "score", "population", "intensity_score", "tier"]]"""
                  """.head(10)"""),
    new_markdown_cell("""## The map

`res.plot()` draws the figure of `map.png`: clusters coloured by rank class, the top 20 labelled
beside their clusters (leader lines where a label had to move), and a panel per region crowded with
top-tier clusters, each labelling its own top clusters."""),
    new_code_cell("""ax = res.plot()"""),
    new_markdown_cell("""## The interactive map

`res.explore()` is the page of `map.html` inside the notebook: Leaflet and the Natural Earth borders
ship with the package, so it works offline. A layer per view (score, each metric's world share,
intensity), popups, search. (A notebook opened from a file shows it once trusted or re-run.)"""),
    new_code_cell("""res.explore()"""),
    new_markdown_cell("""## The sites

`res.sites` are the weighted sites as points (EPSG:4326), with the cluster that holds each."""),
    new_code_cell("""first = res.clusters["cluster_id"].iloc[0]
res.sites[res.sites["cluster_id"] == first].head()"""),
    new_markdown_cell("""## Files with their own column names

`columns=` and `metric=` do what `--map` and `--metric` do on the command line: read a file's
columns as the record columns, and set the metric of a file that has none."""),
    new_code_cell("""patents = (records[records["metric"] == "patents"].drop(columns=["metric"])
           .rename(columns={"lat": "latitude", "lon": "longitude"}))
path = os.path.join(tempfile.mkdtemp(), "patents.csv")
patents.to_csv(path, index=False)
res_patents = cluster.run(path, columns={"lat": "latitude", "lon": "longitude"}, metric="patents",
                          eps_km=15)
res_patents"""),
    new_markdown_cell("""## Run on a GeoDataFrame of points

Point geometry in any CRS is reprojected to WGS84 and gives `lat`/`lon`; the clusters are the same."""),
    new_code_cell("""points = gpd.GeoDataFrame(records.drop(columns=["lat", "lon"]),
                          geometry=gpd.points_from_xy(records["lon"], records["lat"]), crs="EPSG:4326")
res_points = cluster.run(points.to_crs("EPSG:3857"), eps_km=15)
same = (res_points.clusters["cluster_id"].tolist() == res.clusters["cluster_id"].tolist())
print(f"{len(res_points.clusters)} clusters; same clusters as from the DataFrame: {same}")"""),
    new_markdown_cell("""## Parameters and their checks

`cluster.load_config` reads a TOML file or a mapping in the same layout; every value is checked once,
and a wrong one raises `cluster.ConfigError` (a `ValueError`) naming the key and the valid range."""),
    new_code_cell("""config = cluster.load_config({"clustering": {"eps_km": 15}, "ranking": {"top_n": 50}})
try:
    cluster.run(records, config, eps_km=-5)
except cluster.ConfigError as exc:
    print(exc)"""),
    new_markdown_cell("""## Write the outputs

Everything is written into a temporary folder and moved into place when complete."""),
    new_code_cell("""out = res.write(os.environ.get("QUICKSTART_OUT", "out-quickstart"))
sorted(p.name for p in out.iterdir())"""),
    new_markdown_cell("""Writing changes no matplotlib state: figures keep showing inline afterwards."""),
    new_code_cell("""ax = res_points.plot(n_labels=5)"""),
]

TUNING = [
    new_markdown_cell("""# Tuning the density thresholds

How do the clusters and their ranking react to the DBSCAN radius (`eps_km`) and to the core
thresholds? This notebook runs a small sweep on the synthetic demo world with `cluster.sweep`, shows
the comparison with the baseline (the configured defaults) as heat maps, draws the weighted
k-distance curve that helps choose the radius (`cluster.kdist`), and maps the clusters at two
thresholds side by side. The same computations are the commands `cluster sweep` and `cluster kdist`
(see the README, "Tuning thresholds").

The demo world is **synthetic** (real place names, invented activity). Set the environment
variable `TUNING_RECORDS` to change its size (default 50,000 records, so the notebook runs
in seconds)."""),
    new_code_cell("""import os

import matplotlib.pyplot as plt

import cluster
from cluster.demo import generate_demo

N_RECORDS = int(os.environ.get("TUNING_RECORDS", 50_000))
records = generate_demo(N_RECORDS, seed=0)
config = cluster.load_config()
print(f"{len(records):,} records; baseline eps_km = {config.eps_km:g} km")"""),
    new_markdown_cell("""## A small sweep

Every combination of radius and threshold multiplier is clustered and ranked from site
memberships, then compared with the baseline (`eps_km` from the config, scale 1): number of
clusters, share of world activity in clusters and in the top tier, overlap of the top tier,
rank correlations over the matched clusters and the adjusted Rand index of site memberships."""),
    new_code_cell("""sweep = cluster.sweep(records, config, eps_km=[5, 10, 20], min_weight_scale=[0.5, 1, 2])
sweep.table[["eps_km", "min_weight_scale", "n_clusters", "share_in_clusters_patents", "share_in_top_patents",
             "top_overlap", "spearman", "kendall", "adjusted_rand"]]"""),
    new_code_cell("""fig = sweep.plot(["n_clusters", "spearman", "adjusted_rand"])"""),
    new_markdown_cell("""## Weighted k-distance

For each patent site: the distance at which its nearest sites (itself included) weigh as
much as the patents threshold. Sites below the dashed line are core at the configured
radius; the knee of the curve is the classic choice of radius."""),
    new_code_cell("""kd = cluster.kdist(records, "patents", config)
ax = kd.plot()"""),
    new_markdown_cell("""## The clusters at two thresholds

Member sites coloured by cluster, at the configured radius with the thresholds halved and
doubled (`sweep.memberships`, one per combination). Grey dots are all sites."""),
    new_code_cell("""def draw(ax, key):
    mem = sweep.memberships[key]
    lat, lon = sweep.sites["lat"].to_numpy(), sweep.sites["lon"].to_numpy()
    ax.scatter(lon, lat, s=0.5, c="#cccccc", linewidths=0, rasterized=True)
    member = mem.component >= 0
    ax.scatter(lon[member], lat[member], s=2, c=mem.component[member] % 20, cmap="tab20",
               linewidths=0, rasterized=True)
    ax.set_xlim(-180, 180)
    ax.set_ylim(-60, 80)
    ax.set_aspect("equal")
    ax.set_title(f"eps_km {key[0]:g}, thresholds x {key[1]:g}: {mem.n_clusters} clusters")


fig, axes = plt.subplots(1, 2, figsize=(16, 4.5))
for ax, key in zip(axes, [(float(config.eps_km), 0.5), (float(config.eps_km), 2.0)]):
    draw(ax, key)
fig.suptitle("Synthetic demo world")
fig.tight_layout()"""),
]


def main() -> None:
    for name, cells in (("quickstart", QUICKSTART), ("tuning", TUNING)):
        nb = new_notebook(cells=cells, metadata=KERNEL)
        for i, cell in enumerate(nb.cells):
            cell["id"] = f"{name}-{i:02d}"  # stable ids: the file changes only when a cell does
        nbformat.write(nb, ROOT / "notebooks" / f"{name}.ipynb")


if __name__ == "__main__":
    main()

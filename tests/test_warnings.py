"""No warning from a dependency reaches the terminal in normal use: every run below turns
warnings into errors (an error would surface as exit code 1)."""

import geopandas as gpd
import pandas as pd
import pytest
from helpers import make_records, offsets_km
from shapely.geometry import Point

from cluster.cli import main

THRESHOLDS = ["--min-weight", "patents=3", "--min-weight", "publications=3", "--min-weight", "vc=3"]


def _records():
    pts = [offsets_km(48.14, 11.58, dx, 0) for dx in (0, 1, 2)] + [offsets_km(45.76, 4.84, 0, dy) for dy in (0, 1)]
    return make_records(pts, per_site=3)


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("kind", ["csv", "semicolon.csv", "gpkg", "geoparquet", "parquet", "csv.gz"])
def test_a_normal_run_emits_no_warning(tmp_path, kind):
    df = _records()
    path = tmp_path / f"records.{kind}"
    if kind == "csv":
        df.to_csv(path, index=False)
    elif kind == "semicolon.csv":
        df.to_csv(path, sep=";", index=False)
    elif kind == "csv.gz":
        df.to_csv(path, index=False, compression="gzip")
    elif kind == "parquet":
        df.to_parquet(path)
    else:
        gdf = gpd.GeoDataFrame(df.drop(columns=["lat", "lon"]),
                               geometry=[Point(x, y) for x, y in zip(df["lon"], df["lat"])], crs=4326)
        if kind == "gpkg":
            gdf.to_file(path, layer="records")
        else:
            gdf.to_crs(3857).to_parquet(path)
    assert main(["-qq", "run", "--input", str(path), "--out", str(tmp_path / "out"), *THRESHOLDS]) == 0
    assert (tmp_path / "out" / "ranking.csv").exists()


def test_a_metric_without_records_prints_a_dash_not_nan(tmp_path):
    path = tmp_path / "r.csv"
    _records().to_csv(path, index=False)  # patents only: publications and vc are empty
    assert main(["-qq", "run", "--input", str(path), "--out", str(tmp_path / "out"), *THRESHOLDS]) == 0
    md = (tmp_path / "out" / "ranking.md").read_text("utf-8")
    rows = [line for line in md.splitlines() if line.startswith("| 1 ")]
    assert rows and "nan" not in md.lower().replace("nanj", "")
    assert rows[0].split("|")[5].strip() == "\u2013" and rows[0].split("|")[6].strip() == "\u2013"
    assert pd.read_csv(tmp_path / "out" / "ranking.csv")["publications"].isna().all()

"""Writes the binary cases of the bad-input corpus (tests/data/bad/), which cannot be typed
by hand: Parquet, GeoParquet and GeoPackage files, and compressed CSV.

Run from the repository root: ``python tests/data/make_bad_cases.py``. Each case gets its
file(s) and ``case.json`` (arguments, exit code, expected message), like the text cases.
The files are committed; this script documents how they were made and remakes them.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from shapely.geometry import Point, box

BAD = Path(__file__).parent / "bad"
ROWS = pd.DataFrame({"metric": ["patents", "patents", "vc"], "doc_id": ["a", "b", "c"],
                     "lat": [48.1, 48.2, 52.5], "lon": [11.5, 11.6, 13.4]})


def case(name: str, args: str, message: str, exit_code: int = 2) -> Path:
    d = BAD / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "case.json").write_text(json.dumps({"args": args, "exit": exit_code, "message": message},
                                            indent=1, ensure_ascii=False) + "\n", "utf-8")
    return d


def points(geoms) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(ROWS.drop(columns=["lat", "lon"]), geometry=geoms, crs="EPSG:4326")


def main() -> None:
    good = [Point(11.5, 48.1), Point(11.6, 48.2), Point(13.4, 52.5)]

    d = case("input_geoparquet_malformed_geo", "--input {dir}/records.parquet",
             "the GeoParquet 'geo' metadata cannot be read")
    table = pa.Table.from_pandas(ROWS, preserve_index=False)
    pq.write_table(table.replace_schema_metadata({b"geo": b"{not json"}), d / "records.parquet")

    d = case("input_geoparquet_null_geometry", "--input {dir}/records.parquet",
             "row 2, column 'geometry': null geometry (got 'null'). Drop the row or give it a point.")
    points([good[0], None, good[2]]).to_parquet(d / "records.parquet")

    d = case("input_gpkg_null_geometry", "--input {dir}/records.gpkg",
             "row 3, column 'geometry': null geometry (got 'null').")
    points([good[0], good[1], None]).to_file(d / "records.gpkg", layer="records")

    d = case("input_gpkg_polygon", "--input {dir}/records.gpkg",
             "row 1, column 'geometry': geometry must be a point (got 'Polygon'). Give one point per record.")
    gpd.GeoDataFrame(ROWS.drop(columns=["lat", "lon"]), geometry=[box(11, 48, 12, 49)] * 3,
                     crs="EPSG:4326").to_file(d / "records.gpkg", layer="records")

    d = case("input_gpkg_two_point_layers", "--input {dir}/records.gpkg",
             "records.gpkg holds several point layers (inventors, authors). Choose one with --layer.")
    points(good).to_file(d / "records.gpkg", layer="inventors")
    points(good).to_file(d / "records.gpkg", layer="authors")

    d = case("input_gpkg_no_such_layer", "--input {dir}/records.gpkg --layer deals",
             "records.gpkg: no layer 'deals'. Its layers: inventors. Name one of them with --layer.")
    points(good).to_file(d / "records.gpkg", layer="inventors")

    d = case("input_parquet_doc_id_not_utf8", "--input {dir}/records.parquet",
             "row 2, column 'doc_id': not UTF-8 text at byte offset 1 (got b'a\\xff'). "
             "Store the column as UTF-8 strings.")
    pq.write_table(pa.table({"metric": ["patents"] * 3, "doc_id": pa.array([b"a", b"a\xff", b"c"], pa.binary()),
                             "lat": [48.1, 48.2, 48.3], "lon": [11.5, 11.6, 11.7]}), d / "records.parquet")

    d = case("input_parquet_boolean_lat", "--input {dir}/records.parquet",
             "column 'lat' holds true/false values, not numbers. Give decimal degrees (WGS84).")
    pq.write_table(pa.table({"metric": ["patents"] * 3, "doc_id": ["a", "b", "c"],
                             "lat": [True, False, True], "lon": [11.5, 11.6, 11.7]}), d / "records.parquet")

    d = case("input_parquet_date_lon", "--input {dir}/records.parquet",
             "column 'lon' holds dates or times, not numbers.")
    pq.write_table(pa.table({"metric": ["patents"] * 3, "doc_id": ["a", "b", "c"], "lat": [48.1, 48.2, 48.3],
                             "lon": pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-03"])}),
                   d / "records.parquet")

    d = case("input_gzip_corrupt", "--input {dir}/records.csv.gz", "records.csv.gz: cannot read")
    (d / "records.csv.gz").write_bytes(b"\x1f\x8b\x08\x00this is not a gzip stream")



def partitioned_cases() -> None:
    """Directories of hive-partitioned Parquet: a problem is named with its file and row."""
    d = case("input_partition_bad_latitude", "--input {dir}/parts",
             "metric=patents/year=2021/part-0.parquet, row 2, column 'lat': latitude outside [-90, 90] "
             "(got 95.0).")
    for year, lat in ((2020, [48.1, 48.2]), (2021, [48.3, 95.0])):
        folder = d / "parts" / "metric=patents" / f"year={year}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({"doc_id": [f"{year}a", f"{year}b"], "lat": lat, "lon": [11.5, 11.6]}),
                       folder / "part-0.parquet")
    d = case("input_partition_unknown_metric", "--input {dir}/parts",
             "column 'metric': unknown metric (got 'patent').")
    folder = d / "parts" / "metric=patent"
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"doc_id": ["a"], "lat": [48.1], "lon": [11.5]}), folder / "part-0.parquet")

if __name__ == "__main__":
    main()
    partitioned_cases()

import numpy as np
import pandas as pd
import pytest

from cluster.errors import InputDataError, UserInputError
from cluster.ingest.read import read_records

METRICS = ("patents", "publications", "vc")


def test_reads_valid_csv(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("metric,doc_id,lat,lon,year,country\npatents,A,48.1,11.5,2021,de\nvc,B,1.3,103.8,2020,SG\n")
    rec, info = read_records([p], METRICS)
    assert list(rec["metric"].astype(str)) == ["patents", "vc"]
    assert rec["country"].tolist() == ["DE", "SG"]
    assert rec["year"].tolist() == [2021, 2020]
    assert np.isnan(rec["weight"]).all()
    assert info["files"][0]["records"] == 2 and len(info["files"][0]["sha256"]) == 64


def test_missing_column_suggests_rename(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("metric,doc_id,latitude,lon\npatents,A,48.1,11.5\n")
    with pytest.raises(InputDataError, match=r"missing required column 'lat'. Rename column 'latitude' to 'lat'"):
        read_records([p], METRICS)


def test_row_column_and_fix_in_message(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("metric,doc_id,lat,lon\npatents,A,48.1,11.5\npatent,B,48.1,11.5\npatents,C,,11.5\n")
    with pytest.raises(InputDataError) as exc:
        read_records([p], METRICS)
    msg = str(exc.value)
    assert f"{p}, row 3, column 'metric': unknown metric (got 'patent'). Use one of: patents" in msg
    assert f"{p}, row 4, column 'lat': missing or non-numeric coordinate" in msg


def test_swapped_and_projected_coordinates_are_recognised(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("metric,doc_id,lat,lon\n" + "".join(f"patents,{i},121.5,25.0\n" for i in range(3)))
    with pytest.raises(InputDataError, match="look swapped"):
        read_records([p], METRICS)
    p.write_text("metric,doc_id,lat,lon\n" + "".join(f"patents,{i},5300000,1200000\n" for i in range(3)))
    with pytest.raises(InputDataError, match="projected coordinates"):
        read_records([p], METRICS)


def test_longitudes_0_360_are_wrapped(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("metric,weight,lat,lon\npatents,1,10,190\npatents,1,10,-179\n")
    rec, _ = read_records([p], METRICS)
    assert rec["lon"].tolist() == [-170.0, -179.0]


def test_weight_or_doc_id_required(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("metric,doc_id,weight,lat,lon\npatents,,,1,1\npatents,,-2,1,1\n")
    with pytest.raises(InputDataError) as exc:
        read_records([p], METRICS)
    assert "row 2, column 'doc_id': row has neither a doc_id nor a weight" in str(exc.value)
    assert "row 3, column 'weight': weight must be a finite number > 0" in str(exc.value)


@pytest.mark.parametrize("content, match", [
    (b"", "the file is empty"),
    (b"metric,doc_id,lat,lon\n", "header but no records"),
    (b"metric,doc_id,lat,lon\npatents,A,1,2,3,4\n", "malformed CSV"),
    ("metric,doc_id,lat,lon\npatents,Zürich,1,2\n".encode("latin-1"), "not UTF-8"),
])
def test_unreadable_files(tmp_path, content, match):
    p = tmp_path / "r.csv"
    p.write_bytes(content)
    with pytest.raises(UserInputError, match=match):
        read_records([p], METRICS)


def test_missing_path(tmp_path):
    with pytest.raises(UserInputError, match="does not exist"):
        read_records([tmp_path / "nope.csv"], METRICS)


def test_parquet_and_geopackage_points(tmp_path):
    import geopandas as gpd
    from shapely.geometry import Point

    df = pd.DataFrame({"metric": ["patents", "vc"], "weight": [2.0, 1.0], "lat": [48.1, 1.3], "lon": [11.5, 103.8]})
    df.to_parquet(tmp_path / "r.parquet")
    rec, _ = read_records([tmp_path / "r.parquet"], METRICS)
    assert rec["lat"].tolist() == [48.1, 1.3]
    gdf = gpd.GeoDataFrame(df.drop(columns=["lat", "lon"]), geometry=[Point(11.5, 48.1), Point(103.8, 1.3)],
                           crs="EPSG:4326")
    gdf.to_file(tmp_path / "r.gpkg", layer="pts")
    rec2, _ = read_records([tmp_path / "r.gpkg"], METRICS)
    assert rec2["lon"].tolist() == pytest.approx([11.5, 103.8])
    gdf.to_crs(3857).to_parquet(tmp_path / "r.geoparquet")
    rec3, _ = read_records([tmp_path / "r.geoparquet"], METRICS)
    assert rec3["lat"].tolist() == pytest.approx([48.1, 1.3])


# --- Files as they come (issue 15): dialects, compression, layers, types, counts ------------

def _rows(n=6):
    return pd.DataFrame({"metric": ["patents"] * n, "doc_id": [f"d{i}" for i in range(n)],
                         "lat": [48.1 + i * 0.001 for i in range(n)], "lon": [11.5] * n})


@pytest.mark.parametrize("sep", [",", ";", "\t"])
def test_delimiter_is_sniffed(tmp_path, sep):
    path = tmp_path / "r.csv"
    _rows().to_csv(path, sep=sep, index=False)
    rec, _ = read_records([path], METRICS)
    assert rec["lat"].tolist() == _rows()["lat"].tolist()


def test_semicolon_csv_with_decimal_points_in_quotes(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text('metric;doc_id;lat;lon;institution\npatents;a;48.1;11.5;"Uni; Munich"\n')
    rec, _ = read_records([path], METRICS)
    assert rec["institution"].tolist() == ["Uni; Munich"]


@pytest.mark.parametrize("suffix", [".csv.gz", ".csv.zst", ".csv.bz2", ".csv.xz"])
def test_compressed_csv_is_read_directly(tmp_path, suffix):
    path = tmp_path / f"r{suffix}"
    compression = {".csv.gz": "gzip", ".csv.zst": "zstd", ".csv.bz2": "bz2", ".csv.xz": "xz"}[suffix]
    _rows().to_csv(path, sep=";", index=False, compression=compression)
    rec, _ = read_records([path], METRICS)
    assert len(rec) == 6 and rec["doc_id"].tolist()[0] == "d0"


def test_compressed_file_that_is_not_utf8_names_line_and_byte(tmp_path):
    import gzip

    path = tmp_path / "r.csv.gz"
    path.write_bytes(gzip.compress("metric,doc_id,lat,lon\npatents,M\xfcnchen,48.1,11.5\n".encode("latin-1")))
    with pytest.raises(UserInputError, match=r"line 2 \(byte offset 31\): not UTF-8 text"):
        read_records([path], METRICS)


def test_geopackage_point_layer_is_found_among_others_and_can_be_named(tmp_path):
    import geopandas as gpd
    from shapely.geometry import Point, box

    path = tmp_path / "r.gpkg"
    gpd.GeoDataFrame({"name": ["area"]}, geometry=[box(0, 0, 1, 1)], crs=4326).to_file(path, layer="areas")
    df = _rows(3)
    pts = gpd.GeoDataFrame(df.drop(columns=["lat", "lon"]), geometry=[Point(11.5, 48.1)] * 3, crs=4326)
    pts.to_file(path, layer="inventors")
    rec, _ = read_records([path], METRICS)  # the one point layer, no warning
    assert len(rec) == 3
    pts.iloc[:1].to_file(path, layer="authors")
    with pytest.raises(UserInputError, match=r"several point layers \(inventors, authors\)"):
        read_records([path], METRICS)
    assert len(read_records([path], METRICS, layer="authors")[0]) == 1


def test_headline_counts_rows_not_messages(tmp_path):
    df = _rows(17)
    df["lat"] = 95.0  # every row: latitude outside the range
    df.loc[:3, "metric"] = "patent"  # four rows with a second problem
    path = tmp_path / "r.csv"
    df.to_csv(path, index=False)
    with pytest.raises(InputDataError) as exc:
        read_records([path], METRICS)
    assert str(exc.value).splitlines()[0] == "17 row(s) with problems in the input:"
    assert exc.value.rows == 17


def test_blank_institution_stays_empty(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("metric,doc_id,lat,lon,institution\npatents,a,48.1,11.5,\npatents,b,48.1,11.5,TUM\n")
    rec, _ = read_records([path], METRICS)
    assert rec["institution"].tolist() == [None, "TUM"]

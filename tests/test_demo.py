"""Tests of the synthetic demo world (cluster.demo).

Worlds of a few ten thousand records keep the tests fast; the first generation in the
session loads GeoNames (1-3 s), later ones reuse it. Expected values come from the
module's documented model: record shares 35/55/10 %, 1-6 locations per document,
years 2019-2023, city-level points on GeoNames places and postcode points rounded to
0.01 degree.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from cluster.demo import HUBS, METRICS, SYNTHETIC_NOTICE, generate_demo, write_demo
from cluster.engine.geo import haversine_km
from cluster.errors import UserInputError

N = 30_000
SEED = 7


@pytest.fixture(scope="module")
def world() -> pd.DataFrame:
    return generate_demo(N, SEED)


def _fractional(df: pd.DataFrame) -> pd.Series:
    """Weight of each row when its document is counted fractionally (1/n per location)."""
    size = df.groupby([df["metric"].astype(str), df["doc_id"]], sort=False)["doc_id"].transform("size")
    return 1.0 / size.to_numpy()


def test_same_seed_gives_the_same_frame(world):
    again = generate_demo(N, SEED)
    pd.testing.assert_frame_equal(world, again)
    assert (pd.util.hash_pandas_object(world, index=True).to_numpy()
            == pd.util.hash_pandas_object(again, index=True).to_numpy()).all()


def test_another_seed_gives_another_frame(world):
    other = generate_demo(N, SEED + 1)
    assert len(other) == len(world)
    assert not np.array_equal(other["lat"].to_numpy(), world["lat"].to_numpy())
    assert not other["doc_id"].equals(world["doc_id"]) or not other["country"].equals(world["country"])


@pytest.mark.parametrize("n", [1, 2, 3, 7, 999, 12_345])
def test_row_count_is_exact(n):
    assert len(generate_demo(n, 0)) == n


def test_metric_subset_and_order():
    df = generate_demo(1_001, 0, metrics=("vc", "patents"))
    assert len(df) == 1_001
    assert list(df["metric"].cat.categories) == ["vc", "patents"]
    # Rows come metric by metric, in the order asked for.
    assert df["metric"].astype(str).iloc[0] == "vc" and df["metric"].astype(str).iloc[-1] == "patents"
    assert len(generate_demo(500, 0, metrics="vc")) == 500


def test_schema_dtypes_and_ranges(world):
    assert list(world.columns) == ["metric", "doc_id", "lat", "lon", "year", "country", "institution"]
    assert isinstance(world["metric"].dtype, pd.CategoricalDtype)
    assert list(world["metric"].cat.categories) == list(METRICS)
    for col in ("doc_id", "country", "institution"):
        assert pd.api.types.is_string_dtype(world[col].dtype), col
    assert world["lat"].dtype == np.float64 and world["lon"].dtype == np.float64
    assert pd.api.types.is_integer_dtype(world["year"].dtype)
    assert not world.isna().any().any()
    assert world["lat"].between(-90, 90).all()
    assert ((world["lon"] >= -180) & (world["lon"] < 180)).all()
    assert set(world["year"].unique()) == set(range(2019, 2024))
    assert world["country"].str.fullmatch(r"[A-Z]{2}").all()
    assert world["institution"].str.startswith("Synthetic ").all()
    assert world["institution"].str.len().max() <= 60
    prefix = world["metric"].astype(str).map({"patents": "P", "publications": "A", "vc": "V"})
    assert (world["doc_id"].str[0] == prefix).all()
    assert world["doc_id"].str.fullmatch(r"[PAV]\d{7}").all()


def test_row_order_is_metric_then_document(world):
    codes = world["metric"].cat.codes.to_numpy()
    assert (np.diff(codes) >= 0).all()
    for _, part in world.groupby("metric", observed=True, sort=False):
        ids = part["doc_id"].to_numpy()
        assert (ids[1:] >= ids[:-1]).all()


def test_documents_have_one_to_six_locations_and_one_year(world):
    per_doc = world.groupby(["metric", "doc_id"], observed=True).agg(
        n=("lat", "size"), years=("year", "nunique"))
    assert per_doc["years"].eq(1).all()
    assert per_doc["n"].between(1, 6).all()
    mean = per_doc.groupby(level="metric", observed=True)["n"].mean()
    multi = per_doc["n"].gt(1).groupby(level="metric", observed=True).mean()
    assert (multi > 0.05).all(), multi  # multi-location documents in every metric
    assert per_doc["n"].eq(1).mean() > 0.5  # but one location is the common case
    assert mean["publications"] > mean["patents"] > mean["vc"]


def test_metric_proportions(world):
    share = world["metric"].value_counts(normalize=True)
    for metric, expected in {"patents": 0.35, "publications": 0.55, "vc": 0.10}.items():
        assert share[metric] == pytest.approx(expected, abs=1e-3)


def test_city_level_points_repeat_and_postcode_points_are_rounded(world):
    lat = world["lat"].to_numpy()
    lon = world["lon"].to_numpy()
    rounded = (np.isclose(lat, np.round(lat, 2), atol=1e-9, rtol=0)
               & np.isclose(lon, np.round(lon, 2), atol=1e-9, rtol=0))
    assert 0.05 < rounded.mean() < 0.4
    sites = world.groupby(["lat", "lon"]).size()
    assert len(sites) < 0.5 * len(world)  # many records share a location


def test_vc_is_more_concentrated_than_publications(world):
    df = world.assign(w=_fractional(world), metric=world["metric"].astype(str))

    def top10(metric):
        sites = df[df["metric"] == metric].groupby(["lat", "lon"])["w"].sum()
        return sites.nlargest(10).sum() / sites.sum()

    assert top10("vc") > 1.2 * top10("publications")


def test_activity_is_concentrated_in_hubs(world):
    # The heaviest place of the world is a big hub, not a random town.
    df = world.assign(w=_fractional(world))
    lat, lon = df.groupby(["lat", "lon"])["w"].sum().idxmax()
    hubs = np.array([(h[2], h[3]) for h in HUBS])
    assert haversine_km(lat, lon, hubs[:, 0], hubs[:, 1]).min() < 1.0


@pytest.mark.parametrize("centre, radius_km, sides", [
    ((22.45, 114.10), 40, ("CN", "HK")),       # Shenzhen - Hong Kong
    ((1.38, 103.80), 30, ("SG", "MY")),        # Singapore - Johor Bahru
    ((55.80, 12.80), 45, ("DK", "SE")),        # Copenhagen - Malmö (Øresund)
])
def test_cross_border_regions_have_activity_on_both_sides(world, centre, radius_km, sides):
    d = haversine_km(centre[0], centre[1], world["lat"].to_numpy(), world["lon"].to_numpy())
    near = world[d < radius_km]
    share = near["country"].value_counts(normalize=True)
    assert len(near) > 50
    for cc in sides:
        assert share.get(cc, 0.0) >= 0.10, share.head()


def test_hub_table_points_at_geonames_places():
    from cluster.demo._world import _load_places

    places = _load_places()
    assert 120 <= len(HUBS) <= 200
    assert len({(h[0], h[1]) for h in HUBS}) == len(HUBS)
    for name, cc, lat, lon, *strength in HUBS:
        assert all(s >= 0 for s in strength[:3]) and sum(strength[:3]) > 0, name
        d = haversine_km(lat, lon, places.lat, places.lon)
        nearest = int(np.argmin(d))
        assert d[nearest] < 1.0, name
        assert places.countries[places.country[nearest]] == cc, name


@pytest.mark.parametrize("kwargs", [
    {"n_records": 0}, {"n_records": -5}, {"n_records": 2.5}, {"n_records": True},
    {"seed": -1}, {"seed": 1.5}, {"metrics": ("patents", "trademarks")}, {"metrics": ()},
    {"metrics": ("vc", "vc")},
])
def test_bad_arguments_are_rejected(kwargs):
    args = {"n_records": 100, "seed": 0, **kwargs}
    with pytest.raises(UserInputError):
        generate_demo(args.pop("n_records"), args.pop("seed"), **args)


def test_notice_is_one_sentence_saying_synthetic():
    assert SYNTHETIC_NOTICE.startswith("SYNTHETIC")
    assert SYNTHETIC_NOTICE.count(".") == 1 and SYNTHETIC_NOTICE.endswith(".")


def test_write_demo_writes_flagged_parquet(tmp_path):
    path = write_demo(tmp_path / "sub" / "demo.parquet", n_records=2_000, seed=3)
    assert path == tmp_path / "sub" / "demo.parquet" and path.is_file()
    assert sorted(p.name for p in path.parent.iterdir()) == ["demo.parquet"]  # no temp file left
    meta = pq.read_schema(path).metadata
    assert meta[b"innovation_clusters.synthetic"] == b"true"
    description = meta[b"innovation_clusters.description"].decode()
    assert SYNTHETIC_NOTICE in description and "seed=3" in description
    back = pd.read_parquet(path)
    pd.testing.assert_frame_equal(back, generate_demo(2_000, 3))


def test_write_demo_output_reads_as_synthetic(tmp_path):
    from cluster.ingest.read import read_records

    path = write_demo(tmp_path / "demo.parquet", n_records=1_000, seed=0)
    records, info = read_records([path], list(METRICS))
    assert info["synthetic"] is True
    assert len(records) == 1_000


def test_write_demo_is_deterministic_to_the_byte(tmp_path):
    a = write_demo(tmp_path / "a.parquet", n_records=1_500, seed=1)
    b = write_demo(tmp_path / "b.parquet", n_records=1_500, seed=1)
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize("name", ["demo.csv", "demo.parquet.gz", "demo", "demo.gpkg", "demo.geoparquet"])
def test_write_demo_rejects_other_extensions(tmp_path, name):
    with pytest.raises(ValueError, match=re.escape(".parquet")):
        write_demo(tmp_path / name, n_records=10)
    assert list(tmp_path.iterdir()) == []


def test_write_demo_keeps_an_existing_file_when_it_fails(tmp_path):
    path = tmp_path / "demo.parquet"
    path.write_bytes(b"previous")
    with pytest.raises(UserInputError):
        write_demo(path, n_records=0)
    assert path.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.parquet"]
    write_demo(path, n_records=50)
    assert pq.read_table(path).num_rows == 50

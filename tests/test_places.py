"""Places: sections (districts), which places a cluster holds, its population and its name."""

import numpy as np
import pandas as pd
import pytest

from cluster.engine.geo import haversine_km
from cluster.stages.places import (
    EN_DASH,
    assign_places,
    city_parents,
    cluster_economies,
    cluster_names,
    cluster_population,
    display_name,
    load_places,
    root_city,
    section_places,
    unique_names,
)


@pytest.fixture(scope="module")
def places():
    return load_places(1000)


def _row(places, name, country):
    rows = places.index[(places["name"] == name) & (places["country"] == country)]
    return int(places.loc[rows, "population"].idxmax())


@pytest.mark.parametrize("district, country, city", [
    ("Altstadt Nord", "DE", "Köln"),
    ("Milliken", "CA", "Toronto"),
    ("The Bronx", "US", "New York City"),
    ("Shinjuku", "JP", "Tokyo"),
    ("Bao'an", "CN", "Shenzhen"),
])
def test_districts_are_sections_of_their_city(places, district, country, city):
    parent = section_places(places, [_row(places, district, country)])[0]
    assert places["name"][parent] == city


@pytest.mark.parametrize("place, country", [
    ("Kawasaki", "JP"),      # another prefecture than Tokyo
    ("Taoyuan", "TW"),       # 24 km from Taipei's point: beyond the urban radius
    ("Fremont", "US"),       # outside San Jose's urban radius
    ("Oakland", "US"),       # half San Francisco's size
    ("Yokohama", "JP"),
    ("Munich", "DE"),
])
def test_cities_of_their_own_are_not_sections(places, place, country):
    assert section_places(places, [_row(places, place, country)])[0] == -1


def test_root_city_follows_chains():
    parent = np.array([-1, 0, 1, -1, 3])
    assert root_city(parent).tolist() == [-1, 0, 0, -1, 3]


def test_city_parents_classifies_the_parents_of_parents(places):
    bronx = _row(places, "The Bronx", "US")
    parent = city_parents(places, [bronx])
    nyc = parent[bronx]
    assert places["name"][nyc] == "New York City" and parent[nyc] == -1


def test_each_place_belongs_to_the_nearest_members_cluster_within_reach(places):
    # Cluster 0 around Munich, cluster 1 around Augsburg (about 55 km apart).
    lat, lon = np.array([48.137, 48.37]), np.array([11.575, 10.898])
    owner = assign_places(lat, lon, np.array([0, 1]), places, reach_km=10.0)
    for c in (0, 1):
        held = np.flatnonzero(owner == c)
        d = haversine_km(lat[c], lon[c], places["lat"].to_numpy()[held], places["lon"].to_numpy()[held])
        assert len(held) and d.max() <= 10.0
    d_all = haversine_km(lat[0], lon[0], places["lat"].to_numpy(), places["lon"].to_numpy())
    assert set(np.flatnonzero(d_all <= 9.99)) <= set(np.flatnonzero(owner == 0))
    assert places["name"][owner == 0].str.contains("Munich").any()


def test_population_counts_a_district_only_when_its_city_is_not_in_the_cluster(places):
    koeln, nord = _row(places, "Köln", "DE"), _row(places, "Altstadt Nord", "DE")
    parent = np.full(len(places), -1)
    parent[nord] = koeln
    pop = places["population"].to_numpy()
    both = np.full(len(places), -1)
    both[[koeln, nord]] = 0
    assert cluster_population(both, places, parent, 1)[0] == pop[koeln]
    only_district = np.full(len(places), -1)
    only_district[nord] = 0
    assert cluster_population(only_district, places, parent, 1)[0] == pop[nord]


def _name(places, lat, lon, act, *, reach_km=10.0, economies=None, **kw):
    lat, lon = np.asarray(lat, float), np.asarray(lon, float)
    cluster = np.zeros(len(lat), dtype=np.int64) if "cluster" not in kw else kw.pop("cluster")
    n = int(cluster.max()) + 1
    owner = assign_places(lat, lon, cluster, places, reach_km=reach_km)
    parent = city_parents(places, np.flatnonzero(owner >= 0))
    got = cluster_names(lat, lon, cluster, np.asarray(act, float), n, places, place_cluster=owner, parent=parent,
                        economies=economies or ["US"] * n, radius_km=kw.pop("radius_km", 25.0),
                        max_names=kw.pop("max_names", 3), min_ratio=kw.pop("min_ratio", 0.12),
                        min_population=kw.pop("min_population", 150_000))
    return got


def test_a_hong_kong_cluster_is_not_named_after_shenzhen(places):
    # Sites in Kowloon and Hong Kong Island only: Shenzhen's point is 25 km away, outside.
    got = _name(places, [22.32, 22.28], [114.17, 114.16], [3.0, 2.0], economies=["HK"])
    assert "Shenzhen" not in got.names[0] and got.names[0].startswith("Hong Kong")


def test_suburbs_give_way_to_their_city_inside_the_cluster(places):
    # South Boston and Cambridge sites with Boston in reach: the cluster is Boston's.
    got = _name(places, [42.3381, 42.3751, 42.3601], [-71.0476, -71.1056, -71.0589], [3.0, 2.0, 1.0])
    assert got.names[0] == "Boston"


def test_two_clusters_near_one_city_take_their_own_places(places):
    # Cluster 0: San Jose and Palo Alto; cluster 1: Oakland and Fremont (the East Bay).
    lat = [37.3394, 37.4419, 37.8044, 37.5483]
    lon = [-121.8950, -122.1430, -122.2712, -121.9886]
    got = _name(places, lat, lon, [5.0, 3.0, 2.0, 1.5], cluster=np.array([0, 0, 1, 1]))
    assert got.names[0].startswith("San Jose")
    assert set(got.names[1].split(EN_DASH)) == {"Oakland", "Fremont"}
    assert "(" not in got.names[1]


def test_a_district_is_named_as_its_city(places):
    # The Bronx alone (NYC's point is 19 km away, outside a 10 km reach): New York City.
    got = _name(places, [40.8499], [-73.8664], [1.0])
    assert got.names[0] == "New York City"


def test_secondary_names_need_a_known_city(places):
    # Washington DC heavy, Germantown MD (86,000 inhabitants) second: left out of the name.
    got = _name(places, [38.8951, 39.1732], [-77.0364, -77.2717], [5.0, 2.0], reach_km=10.0)
    assert got.names[0] == "Washington"


def test_exonyms_and_korean_city_suffix():
    assert display_name("Köln", "DE") == "Cologne" and display_name("Zürich", "CH") == "Zurich"
    assert display_name("Icheon-si", "KR") == "Icheon" and display_name("Paris", "FR") == "Paris"


def test_repeated_names_are_told_apart_by_state_or_economy(places):
    por_or, por_me = _row(places, "Portland", "US"), 0
    me = places.index[(places["name"] == "Portland") & (places["admin1"] == "ME")]
    por_me = int(me[0])
    cam_gb, cam_us = _row(places, "Cambridge", "GB"), _row(places, "Cambridge", "US")
    got = unique_names(["Portland", "Portland", "Cambridge", "Cambridge", "Cambridge"],
                       [por_or, por_me, cam_us, cam_gb, cam_gb], places)
    assert got == ["Portland", "Portland, ME", "Cambridge", "Cambridge (GB)", "Cambridge (GB) (2)"]


def test_economies_threshold_and_order():
    got = cluster_economies(["CH", "DE", "FR", "CH"], [0, 0, 0, 0], [5.0, 3.0, 0.1, 1.0], 1, min_share=0.05)
    assert got == ["CH/DE"]


def test_places_are_kept_in_the_user_cache_and_read_back_identical(tmp_path, monkeypatch):
    from cluster.stages import places as places_module

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    read = places_module.load_places.__wrapped__  # past the in-process cache
    first = read(15000)
    cached = list((tmp_path / "innovation-clusters" / "geonames").glob("places-15000-*.parquet"))
    assert len(cached) == 1
    # From the cache: the same table, and the package's JSON is not parsed again.
    monkeypatch.setattr(places_module, "_read_geonames", lambda n: pytest.fail("parsed the JSON again"))
    pd.testing.assert_frame_equal(read(15000), first, check_exact=True)
    # A damaged cache file is read past (the package again) and replaced.
    monkeypatch.undo()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cached[0].write_bytes(b"not parquet")
    pd.testing.assert_frame_equal(read(15000), first, check_exact=True)
    pd.testing.assert_frame_equal(pd.read_parquet(cached[0]), first, check_exact=True)


def test_places_without_a_writable_cache_still_load(tmp_path, monkeypatch):
    from cluster.stages import places as places_module

    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # a file: no directory can be made under it
    assert len(places_module.load_places.__wrapped__(15000)) > 20000


def test_the_cached_section_of_column_is_section_places_of_any_subset(places):
    # load_places classifies every place once; a place's city must not depend on which
    # other places are classified with it, or the cached column would differ from a run's.
    rows = np.random.default_rng(0).choice(len(places), 3000, replace=False)
    assert (places["section_of"].to_numpy()[rows] == section_places(places, rows)).all()
    held = np.r_[rows, _row(places, "The Bronx", "US"), _row(places, "Shinjuku", "JP")]
    without = places.drop(columns="section_of")
    assert (city_parents(without, held) == city_parents(places, held)).all()

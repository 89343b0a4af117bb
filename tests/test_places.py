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
                        min_population=kw.pop("min_population", 150_000),
                        principal_min_share=kw.pop("principal_min_share", 0.0), exclude=kw.pop("exclude", None))
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


# --- Place hierarchy (issue 23): administrative parts, duplicates, metropolitan figures ---

@pytest.mark.parametrize("part", ["Kowloon", "New Territories", "Hong Kong Island", "Sha Tin", "Kowloon City"])
def test_the_parts_of_a_city_state_are_sections_of_it(places, part):
    # Hong Kong's GeoNames entry holds the whole territory (7.40 M): its administrative
    # parts (admin1 "00") and districts are in it, whatever their division code.
    parent = city_parents(places, [_row(places, part, "HK")])
    assert places["name"][root_city(parent)[_row(places, part, "HK")]] == "Hong Kong"


def test_singapores_new_towns_and_their_duplicates_are_in_singapore(places):
    for town in ("Ulu Bedok", "Bedok New Town", "Jurong West", "Woodlands"):
        assert places["name"][section_places(places, [_row(places, town, "SG")])[0]] == "Singapore"


def test_an_entry_repeated_with_the_same_population_is_one_settlement():
    # Two entries of one settlement (same population, 1.2 km apart) and a town of its own.
    frame = pd.DataFrame({"geonameid": [1, 2, 3], "name": ["Ulu A", "A New Town", "B"],
                          "lat": [1.3333, 1.3264, 1.40], "lon": [103.9333, 103.9417, 103.70],
                          "country": ["XX"] * 3, "population": [276_990, 276_990, 276_990],
                          "admin1": ["00", "04", "04"]})
    assert section_places(frame).tolist() == [-1, 0, -1]


def test_a_metropolitan_figure_holds_its_neighbours_of_another_division(places):
    # GeoNames' Taipei (7.87 M) is the Taipei-Keelung metropolitan figure: New Taipei City
    # (another first-level division, 4.0 M) is in it; Taoyuan (24 km) is not.
    assert places["name"][section_places(places, [_row(places, "New Taipei City", "TW")])[0]] == "Taipei"
    assert section_places(places, [_row(places, "Taoyuan", "TW")])[0] == -1


def _held_within(places, lat, lon, km):
    d = haversine_km(lat, lon, places["lat"].to_numpy(), places["lon"].to_numpy())
    return np.where(d <= km, 0, -1)


@pytest.mark.parametrize("lat, lon, km, economies, reference", [
    # Census and Statistics Department, 2021 Population Census: 7,413,070.
    (22.35, 114.15, 25.0, ["HK"], 7_413_070),
    # Department of Statistics Singapore, Census of Population 2020: 5,685,807.
    (1.35, 103.82, 25.0, ["SG"], 5_685_807),
    # Ministry of the Interior, household registration Dec 2020: Taipei City 2,602,418,
    # New Taipei City 4,030,954, Keelung 367,577 (Taipei-Keelung metropolitan area).
    (25.04, 121.51, 12.0, ["TW"], 7_000_949),
])
def test_populations_of_city_states_and_metropolitan_figures_are_not_added_up(places, lat, lon, km, economies,
                                                                               reference):
    owner = _held_within(places, lat, lon, km)
    parent = city_parents(places, np.flatnonzero(owner >= 0))
    got = cluster_population(owner, places, parent, 1, economies=["/".join(economies)])[0]
    assert abs(got / reference - 1) <= 0.3, got


def test_population_leaves_out_places_of_economies_without_activity(places):
    # Johor Bahru (MY) is within reach of Singapore's sites, but the cluster is SG's alone.
    owner = _held_within(places, 1.35, 103.82, 25.0)
    parent = city_parents(places, np.flatnonzero(owner >= 0))
    sg = cluster_population(owner, places, parent, 1, economies=["SG"])[0]
    both = cluster_population(owner, places, parent, 1, economies=["SG/MY"])[0]
    jb = places["population"][_row(places, "Johor Bahru", "MY")]
    assert sg == places["population"][_row(places, "Singapore", "SG")] and both >= sg + jb


def test_a_section_of_a_section_is_not_counted_when_the_city_is_held(places):
    # Neighbourhood -> borough -> city: only the city's figure counts.
    nyc, bronx = _row(places, "New York City", "US"), _row(places, "The Bronx", "US")
    owner = np.full(len(places), -1)
    owner[[nyc, bronx]] = 0
    parent = np.full(len(places), -1)
    parent[bronx] = nyc
    fake = len(places) - 1  # any third place, made a section of the Bronx
    owner[fake], parent[fake] = 0, bronx
    assert cluster_population(owner, places, parent, 1)[0] == places["population"][nyc]


# --- Principal city (issue 23) ---

def test_the_principal_city_leads_even_with_less_activity_than_a_suburb(places):
    # Plano (more patents) and Dallas: Dallas is the principal city and comes first.
    got = _name(places, [33.0198, 32.7767, 32.7504], [-96.6989, -96.7970, -97.3345], [1043.0, 900.0, 318.0],
                reach_km=15.0, principal_min_share=0.02)
    assert got.names[0].startswith("Dallas"), got.names[0]


def test_a_city_with_a_negligible_share_does_not_lead(places):
    # Dallas holds 1 % of the activity: Plano leads.
    got = _name(places, [33.0198, 32.7767], [-96.6989, -96.7970], [99.0, 1.0], reach_km=15.0,
                principal_min_share=0.02)
    assert got.names[0].startswith("Plano"), got.names[0]


# --- Geocode hygiene (issue 23) ---

def test_fallback_points_are_flagged_with_what_was_detected(places):
    from cluster.stages.places import fallback_sites

    lat = [37.4138, 45.4831, 37.5665, 43.2123, 36.0, 37.4138]
    lon = [127.5183, -76.2185, 126.978, -77.4300, 128.0, 127.5183]
    weight = [5542.0, 1814.0, 20000.0, 458.0, 500.0, 10.0]
    got = fallback_sites(lat, lon, weight, places, min_activity=77.0)
    assert got[0] == "known geocoder point: Gyeonggi-do (KR) centroid"
    assert got[1] == "no populated place within 10 km"          # west of Ottawa, in the woods
    assert got[2] == ""                                         # Seoul: a city
    assert got[3].startswith("83 per 1,000 inhabitants within 10 km")  # Webster, NY
    assert got[4] in ("coordinates rounded to 1 decimal or fewer", "no populated place within 10 km")
    assert got[5] == ""                                         # below min_activity: not checked


def test_geocode_notes_report_the_share_at_flagged_points():
    from cluster.stages.places import geocode_notes

    flags = np.array(["no populated place within 10 km", "", ""], dtype=object)
    notes, share = geocode_notes(flags, [45.4831, 45.42, 43.0], [-76.2185, -75.69, -79.0], [0, 0, 1],
                                 [3.0, 1.0, 2.0], 2)
    assert share.tolist() == [0.75, 0.0]
    assert notes[0] == ("suspected fallback geocode at 45.4831, -76.2185 (no populated place within 10 km) "
                        "holds 75% of the activity") and notes[1] == ""


def test_a_cluster_is_not_named_after_a_fallback_point_when_it_has_activity_elsewhere(places):
    # 1,814 listings on a point west of Ottawa (flagged), 40 in Ottawa itself.
    lat, lon, act = [45.4831, 45.4215], [-76.2185, -75.6972], [1814.0, 40.0]
    kw = dict(reach_km=40.0, economies=["CA"], principal_min_share=0.05)
    assert not _name(places, lat, lon, act, **kw).names[0].startswith("Ottawa")
    got = _name(places, lat, lon, act, exclude=np.array([True, False]), **kw)
    assert got.names[0].startswith("Ottawa"), got.names[0]


@pytest.mark.parametrize("name, country, shown", [
    ("Yangp'yŏng", "KR", "Yangpyeong"),      # McCune-Reischauer -> Revised Romanization
    ("Wŏnju", "KR", "Wonju"),
    ("Kimhae", "KR", "Gimhae"),
    ("T’aebaek", "KR", "Taebaek"),
    ("Pohang", "KR", "Pohang"),              # already RR: unchanged
    ("Cheonan", "KR", "Cheonan"),
    ("Nizhniy Novgorod", "RU", "Nizhny Novgorod"),
    ("Orël", "RU", "Oryol"),
    ("Ryazan’", "RU", "Ryazan"),
    ("Hachiōji", "JP", "Hachioji"),
    ("Moskva", "RU", "Moscow"),
    ("Malmö", "SE", "Malmö"),
])
def test_one_romanisation_per_country_and_english_exonyms(name, country, shown):
    assert display_name(name, country) == shown


def test_a_city_of_its_own_leads_before_a_district_of_a_city_elsewhere(places):
    # Suginami (a ward of Tokyo, which another cluster holds) and Mito in one cluster.
    lat, lon = [35.6995, 36.3658, 35.6895], [139.6364, 140.4711, 139.6917]
    got = _name(places, lat, lon, [3.0, 2.0, 9.0], cluster=np.array([0, 0, 1]), economies=["JP", "JP"],
                reach_km=5.0, principal_min_share=0.01)
    assert got.names[0].startswith("Mito") and got.names[1].startswith("Tokyo"), got.names


def test_fallback_density_counts_a_section_only_without_its_city_nearby():
    from cluster.stages.places import fallback_sites

    # A city (1,000 people), its district 5.6 km away (400, a section of it) and a town 40 km
    # off (500). By the city, the district's people are the city's; by the district alone
    # (the city 13 km away), they count.
    places = pd.DataFrame({"lat": [50.0, 50.05, 50.36, 49.9], "lon": [8.0, 8.0, 8.0, 8.0],
                           "population": [1000, 400, 500, 0], "section_of": [-1, 0, -1, -1]})
    lat = [50.0, 50.12, 50.36, 49.9, 51.5]
    lon = [8.0001, 8.0, 8.0, 8.0001, 8.0]
    act = [60.0, 30.0, 20.0, 5.0, 5.0]
    got = fallback_sites(lat, lon, act, places, min_activity=1.0, known={})
    assert got[0] == "60 per 1,000 inhabitants within 10 km (1,000 people)"  # 400 not added
    assert got[1] == "75 per 1,000 inhabitants within 10 km (400 people)"
    assert got[2] == ""                                                      # 40 per 1,000
    assert got[3] == ""                                                      # nobody there, 0 people
    assert got[4] == "no populated place within 10 km"


def test_economies_of_several_clusters_some_empty():
    got = cluster_economies(["CH", "DE", "FR", "CH", "FR", "US"], [0, 0, 0, 0, 2, 2],
                            [5.0, 3.0, 0.1, 1.0, 0.0, 0.0], 4, min_share=0.05)
    assert got == ["CH/DE", "", "FR", ""]

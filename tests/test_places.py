import pytest

from cluster.stages.boundaries import cluster_polygon
from cluster.stages.places import (
    EN_DASH,
    cluster_economies,
    cluster_names,
    distinct_names,
    load_places,
    naming_place,
    population_inside,
)


@pytest.fixture(scope="module")
def places():
    return load_places(15000)


@pytest.mark.parametrize("where, lat, lon, city", [
    ("South Boston", 42.3381, -71.0476, "Boston"),
    ("Banqiao", 25.0143, 121.4672, "Taipei"),
    ("Fremont", 37.5483, -121.9886, "San Jose"),
    ("Kawasaki", 35.5206, 139.7172, "Tokyo"),
    ("Yokohama", 35.4437, 139.6380, "Yokohama"),
])
def test_suburbs_give_way_to_their_city(places, where, lat, lon, city):
    assert places["name"][naming_place([lat], [lon], places, 25.0)[0]] == city


def test_name_joins_main_places_by_activity(places):
    # Activity in Shenzhen, Hong Kong and Guangzhou with Shenzhen heaviest; a small
    # suburb with little activity does not make the name.
    lat = [22.5455, 22.2783, 23.1167, 22.9333]
    lon = [114.0683, 114.1747, 113.2500, 113.3667]
    act = [5.0, 3.0, 2.0, 0.1]
    names = cluster_names(lat, lon, [0, 0, 0, 0], act, 1, places, radius_km=25, max_names=3, min_ratio=0.25)
    assert names == [EN_DASH.join(["Shenzhen", "Hong Kong", "Guangzhou"])]


def test_economies_threshold_and_order():
    got = cluster_economies(["CH", "DE", "FR", "CH"], [0, 0, 0, 0], [5.0, 3.0, 0.1, 1.0], 1, min_share=0.05)
    assert got == ["CH/DE"]


def test_population_inside_boundary(places):
    # Brute force: places within the 30 km disc (the 64-gon lies between 29.97 and 30 km).
    from cluster.engine.geo import haversine_km

    g = cluster_polygon([48.137], [11.575], 30.0, 64)
    pop = population_inside([g], places)[0]
    d = haversine_km(48.137, 11.575, places["lat"].to_numpy(), places["lon"].to_numpy())
    inner = places["population"][d < 29.9].sum()
    outer = places["population"][d <= 30.0].sum()
    assert inner <= pop <= outer
    assert places.loc[places["name"].eq("Munich"), "population"].iloc[0] < pop
    assert population_inside([cluster_polygon([0.0], [-30.0], 30.0, 64)], places)[0] == 0  # open ocean


def test_repeated_names_are_told_apart_by_their_heaviest_place():
    got = distinct_names(["San Jose", "Boston", "San Jose", "San Jose", "Boston"],
                         ["San Jose", "Boston", "Fremont", "Fremont", "Boston"])
    assert got == ["San Jose", "Boston", "San Jose (Fremont)", "San Jose (Fremont) (2)", "Boston (2)"]

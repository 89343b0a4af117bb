"""What is printed about clusters survives an analyst's check on real data.

Inputs: PatentsView inventor locations of USPTO patents filed in 2013 and in 2000
(``data/real/patentsview_inventor_locations_{2013,2000}.csv`` as published, CC BY 4.0; see
data/README.md), read with the shipped configuration ``data/real/patentsview.toml`` (its
column mapping; two-level DBSCAN at 15 km, 0.05 % of the world total and three times it)
and with plain DBSCAN at 10 km (the setting shipped before it).

Reference populations (``REFERENCE``): U.S. Census Bureau, 2020 Census, the incorporated
city and its metropolitan statistical area (MSA); Statistics Korea, 2020 Population and
Housing Census (Seoul special city; Seoul Capital Area); Statistics Bureau of Japan, 2020
Census (Tokyo's 23 wards; the Kanto major metropolitan area); for San Jose, whose cluster
is the whole Bay Area as the GII draws it, the San Jose-San Francisco-Oakland combined
statistical area (U.S. Census Bureau, 2020 Census). A cluster's population
(the people of the GeoNames places it holds) must be of the right order: at least 80 %
of its core city (GeoNames figures are older) and at most 1.5 times its metropolitan area.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import cluster
from cluster.engine.geo import haversine_km
from cluster.stages.places import EN_DASH, city_parents, display_name, load_places

REAL = Path(__file__).parents[1] / "data" / "real"
pytestmark = pytest.mark.slow

# name prefix in the ranking -> (core city, metropolitan area) inhabitants
REFERENCE = {
    "San Jose": (1_013_240, 9_225_160),
    "Seattle": (737_015, 4_018_762),
    "Boston": (675_647, 4_941_632),
    "Austin": (961_855, 2_283_371),
    "San Diego": (1_386_932, 3_298_634),
    "Portland": (652_503, 2_512_859),
    "Minneapolis": (429_954, 3_690_261),
    "Seoul": (9_586_195, 26_037_000),
    "Tokyo": (9_733_276, 37_274_000),
}


def _run(year: int, **overrides):
    return cluster.run(REAL / f"patentsview_inventor_locations_{year}.csv", REAL / "patentsview.toml",
                       min_share={"patents": 0.0005}, **overrides)


@pytest.fixture(scope="module")
def runs():
    return {("2013", "shipped"): _run(2013), ("2000", "shipped"): _run(2000),
            ("2013", "dbscan 10 km"): _run(2013, eps_km=10, split_scale=1)}


@pytest.fixture(scope="module")
def places():
    return load_places(1000)


def test_no_top_tier_cluster_without_population(runs):
    for key, res in runs.items():
        top = res.clusters[res.clusters["tier"] == "top"]
        assert (top["population"] > 0).all(), (key, top.loc[top["population"] <= 0, "name"].tolist())


def test_names_are_unique(runs):
    for key, res in runs.items():
        names = res.clusters["name"]
        assert not names.duplicated().any(), (key, names[names.duplicated()].tolist())


def _matches(places, part: str, economies: list[str], lat: float, lon: float, km: float = 60.0):
    """Places of the cluster's economies near its anchor whose display name is ``part``."""
    pl = places[places["country"].isin(economies)]
    shown = np.array([display_name(n, c) for n, c in zip(pl["name"], pl["country"])], dtype=object)
    near = haversine_km(lat, lon, pl["lat"].to_numpy(), pl["lon"].to_numpy()) <= km
    return pl.index[(shown == part) & near].to_numpy()


def test_top_names_are_cities_of_the_clusters_own_economies(runs, places):
    for key, res in runs.items():
        for r in res.clusters.head(30).itertuples():
            economies = r.economies.split("/")
            for part in r.name.split(EN_DASH):
                part = part.split(", ")[0].split(" (")[0]  # "Portland, ME", "Cambridge (GB)"
                reach = r.extent_km + 2 * res.config.eps_km  # anywhere in or by the cluster
                rows = _matches(places, part, economies, r.anchor_lat, r.anchor_lon, reach)
                assert len(rows), (key, r.name, part, economies)
                # ...and it is a city, not a district of a bigger one, unless that bigger one
                # names another cluster (Irving beside Dallas): then it is the best name left.
                parents = city_parents(places, rows)[rows]
                other = {p for n in res.clusters["name"] if n != r.name for p in n.split(EN_DASH)}
                ok = [p == -1 or display_name(places["name"][p], places["country"][p]) in other for p in parents]
                assert any(ok), (key, r.name, part)


def test_metropolitan_populations_are_of_the_right_order(runs):
    res = runs[("2013", "shipped")]
    seen = 0
    for prefix, (city, metro) in REFERENCE.items():
        rows = res.clusters[res.clusters["name"].str.startswith(prefix)]
        if rows.empty:
            continue
        seen += 1
        pop = int(rows["population"].iloc[0])
        assert 0.8 * city <= pop <= 1.5 * metro, (prefix, pop, city, metro)
    assert seen >= 7


def test_intensity_leaders_are_known_hubs_not_artefacts(runs):
    for key, res in runs.items():
        c = res.clusters
        ranked = c[c["intensity_rank"].notna()].sort_values("intensity_rank").head(10)
        assert len(ranked) == 10
        assert (ranked["population"] >= res.config.intensity_min_population).all()
        assert not ranked["single_site"].any() and (ranked["intensity_note"] == "").all()
        # GII 2025's intensity leader is San Jose-San Francisco (shared/reference/gii.md). In
        # 2000, drawn as the whole Bay Area (5 M people), it is sixth per head after company
        # towns (Rochester: Kodak and Xerox; Poughkeepsie: IBM; Boise: Micron).
        top = 3 if key[0] == "2013" else 10
        assert ranked["name"].str.contains("San Jose").head(top).any(), (key, ranked["name"].tolist())


def test_the_single_geocode_artefact_is_flagged_and_kept_out_of_intensity(runs):
    # 5,851 inventor listings at 37.5833 N 139.917 E in 2000 (86 per 1,000 people living
    # within 10 km): a geocoder's point for Fukushima prefecture, not a place.
    c = runs[("2000", "shipped")].clusters
    aizu = c[c["name"].str.contains("Aizu")]
    assert len(aizu) == 1 and "suspected fallback geocode at 37.5833, 139.9170" in aizu["geocode_note"].iloc[0]
    assert aizu["intensity_score"].isna().iloc[0]
    assert aizu["intensity_note"].iloc[0].startswith("activity mostly at suspected fallback geocodes")
    warning = [w for w in runs[("2000", "shipped")].info["warnings"] if "fallback geocodes" in w]
    assert warning and "Aizu-Wakamatsu" in warning[0]


def test_single_site_is_one_location_whatever_the_metric_or_share(runs):
    # San Diego holds over 90 % of its patents on one geocode but has other sites: a city
    # with an intensity. A cluster is single-site only when all its sites are within 1 km.
    for key, res in runs.items():
        c = res.clusters
        sd = c[c["name"] == "San Diego"].iloc[0]
        assert not sd["single_site"] and sd["intensity_score"] > 0, key
        single = c[c["single_site"]]
        assert (single["extent_km"] <= 1.0).all() and single["intensity_score"].isna().all()
        assert (single["intensity_note"] != "").all()
        assert single["intensity_note"].str.startswith("activity at one location (all sites within 1 km)").any()


def test_shape_columns_are_filled(runs):
    c = runs[("2013", "shipped")].clusters
    assert (c["area_km2"] > 0).all() and (c["extent_km"] >= 0).all()
    sj = c[c["name"].str.startswith("San Jose")].iloc[0]
    # Within the nine-county San Francisco Bay Area: about 18,000 km2 of land (US Census
    # Bureau, 2020 county gazetteer), some 200 km from Santa Rosa to Gilroy.
    assert 30 < sj["extent_km"] < 200 and 500 < sj["area_km2"] < 18_000


def _cluster_at(res, lat, lon, km=15.0):
    """The cluster_id of the member site nearest to a city's point (within ``km``)."""
    sites = res.sites[res.sites["cluster_id"].notna() & (res.sites["cluster_id"] != "")]
    d = haversine_km(lat, lon, sites["lat"].to_numpy(), sites["lon"].to_numpy())
    i = int(np.argmin(d))
    return sites["cluster_id"].iloc[i] if d[i] <= km else None


# City points: GeoNames (cluster/tuning/data/gii_metros.csv, the GII's clusters resolved
# to the cities they are named after).
CITY = {"New York City": (40.71427, -74.00597), "Philadelphia": (39.95238, -75.16362),
        "San Jose": (37.33939, -121.89496), "San Francisco": (37.77493, -122.41942),
        "Stuttgart": (48.78232, 9.17702), "Frankfurt am Main": (50.11552, 8.68417),
        "Tokyo": (35.6895, 139.69171), "Yokohama": (35.43333, 139.65)}


@pytest.mark.parametrize("year", ["2013", "2000"])
def test_metros_as_the_gii_draws_them(runs, year):
    """GII (2023 and 2025 rankings, shared/reference/gii.md and gii2023_top_clusters.csv;
    Philadelphia 23rd in GII 2025, shared/seeds/002): New York City and Philadelphia are
    two clusters, San Jose-San Francisco one, Tokyo-Yokohama one; Stuttgart and Frankfurt
    am Main two (a GII 2023 top-100 reading no local source holds: unverified in
    cluster/tuning/data/gii_metros.csv). Plain DBSCAN at 10 km (the former setting) splits
    Tokyo from Yokohama and San Jose from San Francisco in 2013."""
    res = runs[(year, "shipped")]
    at = {name: _cluster_at(res, *point) for name, point in CITY.items()}
    assert all(at.values()), at
    assert at["New York City"] != at["Philadelphia"]
    assert at["San Jose"] == at["San Francisco"]
    assert at["Stuttgart"] != at["Frankfurt am Main"]
    assert at["Tokyo"] == at["Yokohama"]
    old = runs[("2013", "dbscan 10 km")]
    assert _cluster_at(old, *CITY["Tokyo"]) != _cluster_at(old, *CITY["Yokohama"])

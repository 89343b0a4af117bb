"""One validated configuration for a whole run.

The defaults live in ``default_config.toml`` (shipped with the package and documented
there key by key). A user file is merged over them; unknown keys are rejected with the
closest valid name, and every value is checked once here so the stages can trust it.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from cluster.errors import ConfigError

GEONAMES_LEVELS = (500, 1000, 5000, 15000)


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
    """Every parameter of a run. Build it with :func:`load_config`."""

    metrics: tuple[MetricConfig, ...]
    eps_km: float = 10.0
    year_start: int | None = None
    year_end: int | None = None
    disc_segments: int = 32
    boundary_method: str = "discs"
    concave_ratio: float = 0.3
    concave_margin_km: float = 1.0
    population_source: str = "geonames"
    population_raster: str = ""
    write_geojson: bool = False
    sites_outside: bool = False
    geonames_min_population: int = 15000
    name_radius_km: float = 25.0
    max_names: int = 3
    name_min_ratio: float = 0.12
    economy_min_share: float = 0.05
    top_n: int = 100
    bootstrap_replicates: int = 0
    bootstrap_confidence: float = 0.9
    bootstrap_seed: int = 0
    source: str = "defaults"

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
            "input": {"year_start": self.year_start or 0, "year_end": self.year_end or 0},
            "clustering": {"eps_km": self.eps_km},
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
                "economy_min_share": self.economy_min_share,
            },
            "ranking": {"top_n": self.top_n},
            "bootstrap": {"replicates": self.bootstrap_replicates,
                          "confidence": self.bootstrap_confidence, "seed": self.bootstrap_seed},
        }


# The schema: section -> key -> type. Metric tables are checked by _METRIC_KEYS.
_SCHEMA: dict[str, dict[str, type | tuple[type, ...]]] = {
    "input": {"year_start": int, "year_end": int},
    "clustering": {"eps_km": (int, float)},
    "boundaries": {"method": str, "disc_segments": int, "concave_ratio": (int, float),
                   "concave_margin_km": (int, float)},
    "population": {"source": str, "raster_path": str},
    "outputs": {"geojson": bool, "sites_outside": bool},
    "places": {
        "geonames_min_population": int,
        "name_radius_km": (int, float),
        "max_names": int,
        "name_min_ratio": (int, float),
        "economy_min_share": (int, float),
    },
    "ranking": {"top_n": int},
    "bootstrap": {"replicates": int, "confidence": (int, float), "seed": int},
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
    """The commented default configuration file, as shipped."""
    return resources.files("cluster").joinpath("default_config.toml").read_text("utf-8")


def _check_type(value, typ, where: str, problems: list[str]) -> None:
    # bool is an int in Python; a TOML `true` for a number is a mistake worth naming.
    if typ is bool:
        if not isinstance(value, bool):
            problems.append(f"{where} must be true or false, got {value!r}.")
        return
    if isinstance(value, bool) or not isinstance(value, typ):
        names = {int: "an integer", str: "a string"}.get(typ, "a number")
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
            for name, table in body.items():
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
            if key not in _SCHEMA[section]:
                problems.append(_unknown(key, _SCHEMA[section], f"{origin} [{section}]"))
            else:
                _check_type(value, _SCHEMA[section][key], f"{origin} [{section}] {key}", problems)
                doc[section][key] = value
    if problems:
        raise ConfigError("Invalid configuration:\n  - " + "\n  - ".join(problems))
    return doc


def _build(doc: dict[str, Any], source: str) -> Config:
    problems: list[str] = []
    metrics = []
    if not doc.get("metrics"):
        problems.append("at least one [metrics.NAME] table is required.")
    for name, table in doc.get("metrics", {}).items():
        has_w, has_s = "min_weight" in table, "min_share" in table
        if has_w == has_s:
            problems.append(
                f"[metrics.{name}] needs exactly one of min_weight or min_share "
                f"(got {'both' if has_w else 'neither'})."
            )
        mw, ms = table.get("min_weight"), table.get("min_share")
        if mw is not None and not (math.isfinite(mw) and mw > 0):
            problems.append(f"[metrics.{name}] min_weight must be a number > 0, got {mw!r}.")
        if ms is not None and not (math.isfinite(ms) and 0 < ms <= 1):
            problems.append(f"[metrics.{name}] min_share must be in (0, 1], got {ms!r}.")
        sw = table.get("score_weight", 1.0)
        if not (math.isfinite(sw) and sw >= 0):
            problems.append(f"[metrics.{name}] score_weight must be >= 0, got {sw!r}.")
        metrics.append(
            MetricConfig(
                name=name,
                label=table.get("label", name),
                min_weight=None if mw is None else float(mw),
                min_share=None if ms is None or mw is not None else float(ms),
                score_weight=float(sw),
            )
        )
    c, p, b, r, i = doc["clustering"], doc["places"], doc["boundaries"], doc["ranking"], doc["input"]
    if not (math.isfinite(c["eps_km"]) and 0 < c["eps_km"] <= 20_000):
        problems.append(f"[clustering] eps_km must be in (0, 20000] km, got {c['eps_km']!r}.")
    bs = doc["bootstrap"]
    if bs["replicates"] < 0:
        problems.append(f"[bootstrap] replicates must be >= 0 (0 = off), got {bs['replicates']!r}.")
    if not 0 < bs["confidence"] < 1:
        problems.append(f"[bootstrap] confidence must be in (0, 1), got {bs['confidence']!r}.")
    if r["top_n"] <= 0:
        problems.append(f"[ranking] top_n must be a positive integer, got {r['top_n']!r}.")
    if b["disc_segments"] < 8:
        problems.append(f"[boundaries] disc_segments must be >= 8, got {b['disc_segments']!r}.")
    if b["method"] not in ("discs", "concave"):
        problems.append(f"[boundaries] method must be \"discs\" or \"concave\", got {b['method']!r}.")
    if not 0 <= b["concave_ratio"] <= 1:
        problems.append(f"[boundaries] concave_ratio must be in [0, 1], got {b['concave_ratio']!r}.")
    if not (math.isfinite(b["concave_margin_km"]) and b["concave_margin_km"] > 0):
        problems.append(f"[boundaries] concave_margin_km must be > 0, got {b['concave_margin_km']!r}.")
    pop = doc["population"]
    if pop["source"] not in ("geonames", "raster"):
        problems.append(f"[population] source must be \"geonames\" or \"raster\", got {pop['source']!r}.")
    elif pop["source"] == "raster" and not pop["raster_path"]:
        problems.append("[population] source = \"raster\" needs raster_path (a GeoTIFF population grid).")
    if p["geonames_min_population"] not in GEONAMES_LEVELS:
        problems.append(
            f"[places] geonames_min_population must be one of {GEONAMES_LEVELS}, "
            f"got {p['geonames_min_population']!r}."
        )
    if p["name_radius_km"] < 0:
        problems.append(f"[places] name_radius_km must be >= 0, got {p['name_radius_km']!r}.")
    if p["max_names"] < 1:
        problems.append(f"[places] max_names must be >= 1, got {p['max_names']!r}.")
    for key in ("name_min_ratio", "economy_min_share"):
        if not 0 <= p[key] <= 1:
            problems.append(f"[places] {key} must be in [0, 1], got {p[key]!r}.")
    ys, ye = i["year_start"] or None, i["year_end"] or None
    if ys is not None and ye is not None and ys > ye:
        problems.append(f"[input] year_start ({ys}) is after year_end ({ye}).")
    if problems:
        raise ConfigError(f"Invalid configuration ({source}):\n  - " + "\n  - ".join(problems))
    return Config(
        metrics=tuple(metrics),
        eps_km=float(c["eps_km"]),
        year_start=ys,
        year_end=ye,
        disc_segments=int(b["disc_segments"]),
        boundary_method=b["method"],
        concave_ratio=float(b["concave_ratio"]),
        concave_margin_km=float(b["concave_margin_km"]),
        population_source=pop["source"],
        population_raster=pop["raster_path"],
        write_geojson=bool(doc["outputs"]["geojson"]),
        sites_outside=bool(doc["outputs"]["sites_outside"]),
        geonames_min_population=int(p["geonames_min_population"]),
        name_radius_km=float(p["name_radius_km"]),
        max_names=int(p["max_names"]),
        name_min_ratio=float(p["name_min_ratio"]),
        economy_min_share=float(p["economy_min_share"]),
        top_n=int(r["top_n"]),
        bootstrap_replicates=int(bs["replicates"]),
        bootstrap_confidence=float(bs["confidence"]),
        bootstrap_seed=int(bs["seed"]),
        source=source,
    )


def load_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> Config:
    """Load and validate a configuration.

    Parameters
    ----------
    path : path-like, optional
        A TOML file merged over the shipped defaults. ``None`` uses the defaults.
    overrides : mapping, optional
        Command-line overrides: ``eps_km`` (km), ``top_n``, ``year_start``, ``year_end``,
        ``bootstrap`` (replicates), ``geojson`` (true writes clusters.geojson)
        and ``min_weight`` (a mapping metric -> weight, replacing that metric's threshold).

    Raises
    ------
    ConfigError
        Listing every problem: unknown keys (with the closest valid one), wrong types and
        out-of-range values.
    """
    user: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"Config file {p} does not exist. Pass an existing TOML file to --config.")
        try:
            user = tomllib.loads(p.read_text("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"Config file {p} is not valid TOML: {exc}. Fix the syntax.") from None
        source = str(p)
    doc = _merge(user, str(path) if path else "defaults")
    overrides = dict(overrides or {})
    for key, section in (("eps_km", "clustering"), ("top_n", "ranking"),
                         ("year_start", "input"), ("year_end", "input")):
        if overrides.get(key) is not None:
            doc[section][key] = overrides[key]
    if overrides.get("geojson"):
        doc["outputs"]["geojson"] = True
    if overrides.get("bootstrap") is not None:
        doc["bootstrap"]["replicates"] = overrides["bootstrap"]
    for name, value in (overrides.get("min_weight") or {}).items():
        if name not in doc["metrics"]:
            raise ConfigError(
                f"--min-weight {name}={value}: unknown metric '{name}'. "
                f"Configured metrics: {', '.join(doc['metrics'])}."
            )
        table = dict(doc["metrics"][name])
        table.pop("min_share", None)
        table["min_weight"] = value
        doc["metrics"][name] = table
    return _build(doc, source)


def with_metrics(config: Config, names) -> Config:
    """The same config restricted to the given metric names (order kept)."""
    keep = tuple(m for m in config.metrics if m.name in set(names))
    return replace(config, metrics=keep)

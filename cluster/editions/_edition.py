"""One edition of the ranking: a run's clusters, the sites they count, and its run.json.

An edition is read back from an output folder (``clusters.parquet``, ``run.json`` and
the ``sites`` layer of ``clusters.gpkg``) or taken from a :class:`~cluster.pipeline.RunResult`
in memory, so two editions can be compared whether they were written last year or are
computed now.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from cluster.errors import UserInputError


@dataclass(frozen=True)
class Edition:
    """A run, as an edition to compare.

    Attributes
    ----------
    clusters : GeoDataFrame
        The run's clusters in rank order (``cluster_id``, ``rank``, ``name``, ``tier``,
        counts, ``share_<metric>``, ``score``, intensity, polygons in EPSG:4326).
    sites : DataFrame or None
        The run's sites: ``cluster_id`` (None for a site in no cluster), ``metric``,
        ``weight``, ``lat``, ``lon`` (degrees); those counted in a cluster, and the others
        too when the run kept them (``[outputs] sites_outside``, or a run in memory);
        None when the folder has no ``sites`` layer.
    info : dict
        The run's ``run.json``.
    label : str
        What messages and tables call the edition (the folder, or the year window).
    """

    clusters: gpd.GeoDataFrame
    sites: pd.DataFrame | None
    info: dict
    label: str

    @property
    def metrics(self) -> list[str]:
        """Metrics the run used: configured and with a world total above zero."""
        totals = self.info.get("world_totals", {})
        return [m for m in self.info.get("config", {}).get("metrics", {}) if totals.get(m, 0) > 0]

    @property
    def eps_km(self) -> float:
        return float(self.info.get("config", {}).get("clustering", {}).get("eps_km", float("nan")))

    @property
    def sites_outside(self) -> bool:
        """Whether :attr:`sites` holds the sites in no cluster too (else: clustered only)."""
        if self.sites is None:
            return False
        return bool(self.info.get("config", {}).get("outputs", {}).get("sites_outside", False)
                    or self.sites["cluster_id"].isna().any())

    @property
    def top_n(self) -> int:
        return int(self.info.get("config", {}).get("ranking", {}).get("top_n", 100))

    def site_activity(self) -> np.ndarray:
        """Each site's contribution to its cluster's score in percentage points:
        ``100 * score_weight_m * weight / world_m`` (the edition's own world totals), so
        sites of different metrics add up as the score does."""
        if self.sites is None:
            return np.zeros(0)
        totals = self.info.get("world_totals", {})
        metrics = self.info.get("config", {}).get("metrics", {})
        metric = self.sites["metric"].astype(str).to_numpy()
        act = np.zeros(len(self.sites))
        for m, table in metrics.items():
            if totals.get(m, 0) > 0:
                sel = metric == m
                act[sel] = (100.0 * float(table.get("score_weight", 1.0))
                            * self.sites["weight"].to_numpy(dtype=float)[sel] / totals[m])
        return act


def _info_problem(info) -> str | None:
    """What is wrong with a ``run.json`` that an edition reads, or None."""
    if not isinstance(info, dict):
        return f"a {type(info).__name__}, not the object a run writes"
    totals, config = info.get("world_totals", {}), info.get("config", {})
    if not isinstance(totals, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in totals.values()):
        return "world_totals is not a mapping of metric to number"
    if not isinstance(config, dict):
        return "config is not an object"
    for key in ("metrics", "clustering", "ranking"):
        if not isinstance(config.get(key, {}), dict):
            return f"config.{key} is not an object"
    eps = config.get("clustering", {}).get("eps_km", 0.0)
    top = config.get("ranking", {}).get("top_n", 100)
    if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not isinstance(top, int) or isinstance(top, bool):
        return "config.clustering.eps_km or config.ranking.top_n is not a number"
    return None


# What matching and the comparison read from clusters.parquet.
_REQUIRED_COLUMNS = ("cluster_id", "rank", "name", "geometry")


def load_edition(folder: str | Path) -> Edition:
    """Read an edition from a ``cluster run`` output folder.

    Parameters
    ----------
    folder : path-like
        Holds ``clusters.parquet`` and ``run.json``; the ``sites`` layer of
        ``clusters.gpkg`` is read when present (matching then uses site weights, else
        polygon areas).

    Returns
    -------
    Edition

    Raises
    ------
    UserInputError
        When the folder or one of the two required files is missing or unreadable.
    """
    folder = Path(folder)
    if not folder.is_dir():
        message = f"{folder} is not a directory. Give the --out folder of a `cluster run` (it holds run.json)."
        raise UserInputError(message)
    missing = [f for f in ("clusters.parquet", "run.json") if not (folder / f).is_file()]
    if missing:
        message = (f"{folder} has no {' and no '.join(missing)}: it is not the output folder of a "
                   "`cluster run`. Give the folder a run wrote (its --out).")
        raise UserInputError(message)
    broken = f"{folder}: the run's outputs cannot be read ({{}}). Re-run `cluster run` into it."
    try:
        info = json.loads((folder / "run.json").read_text("utf-8"))
        clusters = gpd.read_parquet(folder / "clusters.parquet")
    except Exception as exc:  # pyarrow/json raise several types for a broken file
        raise UserInputError(broken.format(exc)) from None
    problem = _info_problem(info)
    if problem:
        raise UserInputError(broken.format(f"run.json: {problem}"))
    missing = [c for c in _REQUIRED_COLUMNS if c not in clusters.columns]
    if missing:
        raise UserInputError(broken.format(f"clusters.parquet has no column {', '.join(missing)}"))
    sites = None
    gpkg = folder / "clusters.gpkg"
    if gpkg.is_file():
        import pyogrio

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # GDAL's words on a damaged file: the error below says it
                if "sites" in [name for name, _ in pyogrio.list_layers(gpkg)]:
                    layer = pyogrio.read_dataframe(gpkg, layer="sites", columns=["cluster_id", "metric", "weight"])
                    sites = pd.DataFrame({"cluster_id": layer["cluster_id"], "metric": layer["metric"].astype(str),
                                          "weight": layer["weight"].astype(float),
                                          "lat": layer.geometry.y.to_numpy(), "lon": layer.geometry.x.to_numpy()})
        except Exception as exc:  # pyogrio raises DataSourceError, KeyError, ... for a damaged file
            raise UserInputError(broken.format(f"clusters.gpkg: {exc}")) from None
    return Edition(clusters=clusters, sites=sites, info=info, label=str(folder))


def edition_from_result(result, label: str) -> Edition:
    """An edition from a :class:`~cluster.pipeline.RunResult` in memory (every site, those
    in no cluster with ``cluster_id`` None)."""
    s = result.sites
    cid = s["cluster_id"].astype(object)
    sites = pd.DataFrame({"cluster_id": cid.where(cid.notna(), None).to_numpy(),
                          "metric": s["metric"].astype(str).to_numpy(),
                          "weight": s["weight"].to_numpy(dtype=float),
                          "lat": s["lat"].to_numpy(), "lon": s["lon"].to_numpy()})
    info = json.loads(json.dumps(result.info, default=_json_default))
    return Edition(clusters=result.clusters, sites=sites, info=info, label=label)


def _json_default(obj):
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    return str(obj)

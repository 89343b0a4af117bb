"""innovation-clusters: GII-style science-and-technology clusters from geocoded activity.

The public API, for notebooks and scripts (the ``cluster`` command line calls the same)::

    import cluster
    res = cluster.run("records.csv", eps_km=15)     # or a DataFrame / GeoDataFrame of points
    res.clusters                                     # GeoDataFrame in rank order
    res.plot()                                       # world map (matplotlib Axes)
    res.write("out")                                 # GeoPackage, GeoParquet, CSV, maps, run.json

* :func:`run`, :class:`RunResult`: the whole pipeline (:mod:`cluster.pipeline`);
* :func:`sweep`, :func:`kdist`: the threshold tools (``cluster sweep``, ``cluster kdist``);
* :func:`load_config`, :class:`Config`, :class:`MetricConfig`: validated parameters;
* :func:`dbscan_sphere`, :class:`SphericalDBSCAN`: the exact weighted DBSCAN on the
  sphere (:mod:`cluster.engine`);
* :class:`UserInputError`, :class:`ConfigError`, :class:`InputDataError`: what bad input
  raises (all ``ValueError``).

The stages are in :mod:`cluster.stages`, the writers in :mod:`cluster.outputs`, the
threshold tools in :mod:`cluster.tuning`, the synthetic demo world in :mod:`cluster.demo`.
"""

from cluster._version import __version__
from cluster.errors import ConfigError, InputDataError, UserInputError

__all__ = ["Config", "ConfigError", "InputDataError", "KdistResult", "MetricConfig", "RunResult", "SphericalDBSCAN",
           "SweepResult", "UserInputError", "__version__", "dbscan_sphere", "kdist", "load_config", "run", "sweep"]

# The rest is imported on first use (PEP 562), so that `import cluster` and the commands
# that need no clustering (`cluster --help`, `cluster config`, `cluster demo`) do not
# wait for pandas, geopandas, numba and scikit-learn.
_LAZY = {"run": "cluster._api", "sweep": "cluster._api", "kdist": "cluster._api", "SweepResult": "cluster._api",
         "KdistResult": "cluster._api", "RunResult": "cluster.pipeline", "Config": "cluster.config",
         "MetricConfig": "cluster.config", "load_config": "cluster.config",
         "SphericalDBSCAN": "cluster.engine.estimator", "dbscan_sphere": "cluster.engine.dbscan"}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cluster' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

"""innovation-clusters: GII-style science-and-technology clusters from geocoded activity.

The public API, for notebooks and scripts (the ``cluster`` command line calls the same)::

    import cluster
    res = cluster.run("records.csv", eps_km=15)     # or a DataFrame / GeoDataFrame of points
    res.clusters                                     # GeoDataFrame in rank order
    res.plot()                                       # world map (matplotlib Axes)
    res.write("out")                                 # GeoPackage, GeoParquet, CSV, maps, run.json

* :func:`run`, :class:`RunResult`: the whole pipeline (:mod:`cluster.pipeline`);
* :func:`load_config`, :class:`Config`, :class:`MetricConfig`: validated parameters;
* :func:`dbscan_sphere`, :class:`SphericalDBSCAN`: the exact weighted DBSCAN on the
  sphere (:mod:`cluster.engine`);
* :class:`UserInputError`, :class:`ConfigError`, :class:`InputDataError`: what bad input
  raises (all ``ValueError``).

The stages are in :mod:`cluster.stages`, the writers in :mod:`cluster.outputs`, the
threshold tools in :mod:`cluster.tuning`, the synthetic demo world in :mod:`cluster.demo`.
"""

from cluster._api import run
from cluster._version import __version__
from cluster.config import Config, MetricConfig, load_config
from cluster.engine import SphericalDBSCAN, dbscan_sphere
from cluster.errors import ConfigError, InputDataError, UserInputError
from cluster.pipeline import RunResult

__all__ = ["Config", "ConfigError", "InputDataError", "MetricConfig", "RunResult", "SphericalDBSCAN",
           "UserInputError", "__version__", "dbscan_sphere", "load_config", "run"]

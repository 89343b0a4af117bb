"""The exact engine: spherical geometry and weighted DBSCAN on the sphere.

Nothing here knows about metrics, records or outputs: plain arrays in, plain arrays
out. :mod:`cluster.engine.geo` holds the one Earth radius and the unit-vector maths,
:mod:`cluster.engine.dbscan` the clustering (:mod:`cluster.engine.hdbscan` its
variable-density form), :mod:`cluster.engine.polygons` the geodesic
discs and the antimeridian split shared by every boundary method.
"""

from cluster.engine.geo import EARTH_RADIUS_KM, chord_for_km, haversine_km, unit_vectors

__all__ = ["EARTH_RADIUS_KM", "SphericalDBSCAN", "chord_for_km", "dbscan_sphere", "haversine_km",
           "hdbscan_sphere", "unit_vectors"]


def __getattr__(name: str):
    # The DBSCAN names on first use (PEP 562): importing the geometry alone (the boundaries,
    # places and maps use it) does not load numba and scikit-learn.
    if name == "dbscan_sphere":
        from cluster.engine.dbscan import dbscan_sphere

        return dbscan_sphere
    if name == "hdbscan_sphere":
        from cluster.engine.hdbscan import hdbscan_sphere

        return hdbscan_sphere
    if name == "SphericalDBSCAN":
        from cluster.engine.estimator import SphericalDBSCAN

        return SphericalDBSCAN
    raise AttributeError(f"module 'cluster.engine' has no attribute {name!r}")

"""Spherical geometry shared by every stage: one Earth radius, radians in one place.

All distances are great-circle distances on a sphere of radius
:data:`EARTH_RADIUS_KM` (the IUGG mean radius, the value scikit-learn's haversine
examples and the GII method description use), so a radius given in kilometres means
the same thing to the clustering, the boundaries and the merge rule.
"""

from __future__ import annotations

import numpy as np

EARTH_RADIUS_KM = 6371.0088


def unit_vectors(lat, lon):
    """3-D unit vectors of points given in degrees.

    Parameters
    ----------
    lat, lon : array-like of shape (n,)
        WGS84 latitude and longitude in degrees.

    Returns
    -------
    ndarray of shape (n, 3), float64
        Cartesian coordinates on the unit sphere. Longitudes that differ by 360
        degrees give the same vector, so nothing downstream sees the antimeridian.
    """
    phi = np.radians(np.asarray(lat, dtype=np.float64))
    lam = np.radians(np.asarray(lon, dtype=np.float64))
    cos_phi = np.cos(phi)
    return np.column_stack((cos_phi * np.cos(lam), cos_phi * np.sin(lam), np.sin(phi)))


def chord_for_km(distance_km: float) -> float:
    """Chord length on the unit sphere for a great-circle distance.

    Parameters
    ----------
    distance_km : float
        Great-circle distance in km (capped at half the circumference).

    Returns
    -------
    float
        ``2 sin(d / 2R)``, the straight-line distance between unit vectors that far apart.

    Examples
    --------
    >>> round((chord_for_km(6371.0088 * 3.141592653589793)), 12)
    2.0
    """
    return float(2.0 * np.sin(min(distance_km / EARTH_RADIUS_KM, np.pi) / 2.0))


def haversine_km(lat1, lon1, lat2, lon2):
    """Great-circle distance between points (broadcasts like numpy).

    Parameters
    ----------
    lat1, lon1, lat2, lon2 : float or array-like
        WGS84 coordinates in degrees.

    Returns
    -------
    float or ndarray
        Distance in km on the sphere of radius :data:`EARTH_RADIUS_KM`.

    Examples
    --------
    >>> round(float(haversine_km(0.0, 179.5, 0.0, -179.5)), 1)  # across the antimeridian
    111.2
    """
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dlam = np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlam / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))

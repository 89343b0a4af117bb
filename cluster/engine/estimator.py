"""The scikit-learn estimator form of :func:`cluster.engine.dbscan.dbscan_sphere`.

A module of its own so that a run, which calls the function, does not import
scikit-learn's estimator machinery (about 1.5 s).
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils.validation import _check_sample_weight, validate_data

from cluster.engine.dbscan import (
    _announce_compilation,
    _check_positive,
    _check_weight,
    _dbscan,
    _require,
)

__all__ = ["SphericalDBSCAN"]


class SphericalDBSCAN(ClusterMixin, BaseEstimator):
    """Exact weighted DBSCAN on the sphere, as a scikit-learn estimator.

    The estimator form of :func:`dbscan_sphere` (same implementation): equivalent to
    ``DBSCAN(eps=eps_km / 6371.0088, min_samples=min_weight, metric="haversine")`` on
    points in radians, with the border tie rule and label numbering of
    :mod:`cluster.engine.dbscan`.

    Parameters
    ----------
    eps_km : float
        Neighbourhood radius in kilometres of great-circle distance on a sphere of
        radius 6371.0088 km, in (0, inf).
    min_weight : float
        Weight within ``eps_km`` (own weight included) that makes a point core, in
        (0, inf). Fractional values are allowed.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,), int64
        Cluster of each point, -1 for noise.
    core_sample_indices_ : ndarray of shape (n_core_samples,), int64
        Indices of the core points, increasing.
    components_ : ndarray of shape (n_core_samples, 2)
        ``[lat, lon]`` in degrees of each core point.
    n_features_in_ : int
        Always 2.
    feature_names_in_ : ndarray of shape (2,), object
        The column names of ``X`` when it was fitted on a DataFrame with string column
        names (e.g. ``["lat", "lon"]``); absent otherwise.

    Notes
    -----
    Input is checked with scikit-learn's own validators (``validate_data``,
    ``_check_sample_weight``), so it is refused as every scikit-learn estimator refuses it,
    in the same words: complex numbers, sparse matrices, empty arrays, NaN or infinity,
    negative or all-zero weights. The latitude/longitude checks come after.

    Examples
    --------
    >>> X = [[0.0, 0.0], [0.0, 0.05], [0.05, 0.0], [40.0, 40.0]]
    >>> SphericalDBSCAN(eps_km=10.0, min_weight=3).fit_predict(X).tolist()
    [0, 0, 0, -1]
    """

    def __init__(self, *, eps_km, min_weight):
        self.eps_km = eps_km
        self.min_weight = min_weight

    def fit(self, X, y=None, sample_weight=None):
        """Cluster points.

        Parameters
        ----------
        X : array-like of shape (n_samples, 2)
            ``[lat, lon]`` in degrees: latitude finite in [-90, 90], longitude finite.
        y : None
            Ignored; present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Finite non-negative weight of each point; None means 1 each.

        Returns
        -------
        self : SphericalDBSCAN
            Fitted estimator.
        """
        owner = type(self).__name__
        eps_km = _check_positive(self.eps_km, "eps_km", owner)
        min_weight = _check_positive(self.min_weight, "min_weight", owner)
        # scikit-learn's validator: refuses complex, sparse, empty, NaN/inf and
        # non-numeric input in scikit-learn's words, sets n_features_in_ and, for a
        # DataFrame, feature_names_in_.
        X = validate_data(self, X, dtype=np.float64, ensure_min_samples=1)
        if X.shape[1] != 2:
            raise ValueError(f"The 'X' parameter of {owner} must be an array of shape (n, 2) "
                             f"holding [lat, lon] in degrees. Got an array of shape {X.shape} "
                             f"({X.shape[1]} feature(s)) instead.")
        lat = np.ascontiguousarray(X[:, 0])
        lon = np.ascontiguousarray(X[:, 1])
        with _announce_compilation():
            _require(lat, -90.0, 90.0, "X", owner,
                     "hold finite latitudes in [-90, 90] degrees in column 0", where="row")
            _require(lon, -math.inf, math.inf, "X", owner,
                     "hold finite longitudes in degrees in column 1", where="row")
            if sample_weight is not None:
                # ours first (it names the first bad index), then scikit-learn's, which
                # refuses weights that are all zero (no point could ever be core).
                _check_weight(sample_weight, X.shape[0], "sample_weight", owner)
                sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
                if not sample_weight.any():  # scikit-learn before 1.7 lets all-zero weights through
                    raise ValueError("Sample weights must contain at least one non-zero number.")
            labels, core = _dbscan(lat, lon, sample_weight, eps_km, min_weight)
        self.labels_ = labels
        self.core_sample_indices_ = np.flatnonzero(core).astype(np.int64, copy=False)
        self.components_ = X[self.core_sample_indices_].copy()
        return self

    def fit_predict(self, X, y=None, sample_weight=None):
        """Cluster points and return their labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, 2)
            ``[lat, lon]`` in degrees.
        y : None
            Ignored; present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Finite non-negative weight of each point; None means 1 each.

        Returns
        -------
        labels : ndarray of shape (n_samples,), int64
            Cluster of each point, -1 for noise.
        """
        return self.fit(X, sample_weight=sample_weight).labels_

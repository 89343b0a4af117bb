"""scikit-learn's own estimator checks on :class:`cluster.SphericalDBSCAN`.

``parametrize_with_checks`` runs every check scikit-learn applies to its own estimators.
The checks expected to fail are listed below, each with its reason: all of them feed
generic test data (3 to 30 random columns, or two columns of values up to ~100) where
the estimator needs ``[lat, lon]`` in degrees, two columns with latitudes in [-90, 90].
What those checks verify that still makes sense on the sphere (NaN/inf, all-zero and
listed weights, object dtype, pickling, order invariance, idempotence, one sample) is
tested below them on latitude/longitude data. Everything else passes as is, including
the refusal of complex, sparse and empty input in scikit-learn's words.
"""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from cluster.engine.estimator import SphericalDBSCAN

_COLUMNS = "its test data has {} columns; X must be [lat, lon] in degrees (2 columns)"
_LATITUDES = "its test data has values beyond 90 in column 0; latitudes must lie in [-90, 90]"
EXPECTED_FAILED_CHECKS = {
    "check_fit_score_takes_y": _COLUMNS.format(3),
    "check_dont_overwrite_parameters": _COLUMNS.format(3),
    "check_n_features_in_after_fitting": _COLUMNS.format(4),
    "check_positive_only_tag_during_fit": _COLUMNS.format("4 (iris)"),
    "check_estimators_dtypes": _COLUMNS.format(5),
    "check_sample_weights_list": _COLUMNS.format(3),
    "check_all_zero_sample_weights_error": _COLUMNS.format(20),
    "check_sample_weight_equivalence_on_dense_data": _COLUMNS.format(30),
    "check_dtype_object": _COLUMNS.format(10),
    "check_pipeline_consistency": _COLUMNS.format(3),
    "check_estimators_nan_inf": _COLUMNS.format(3),
    "check_estimators_pickle": _COLUMNS.format(3),
    "check_f_contiguous_array_estimator": _COLUMNS.format(3),
    "check_methods_sample_order_invariance": _COLUMNS.format(3),
    "check_methods_subset_invariance": _COLUMNS.format(3),
    "check_fit2d_1sample": _COLUMNS.format(10),
    "check_dict_unchanged": _COLUMNS.format(3),
    "check_fit2d_predict1d": _COLUMNS.format(3),
    "check_fit_idempotent": _LATITUDES,
    "check_fit_check_is_fitted": _LATITUDES,
    "check_n_features_in": _LATITUDES,
}


def expected_failed_checks(estimator):
    return EXPECTED_FAILED_CHECKS


# eps_km=55, min_weight=5: scikit-learn's DBSCAN defaults (eps=0.5, min_samples=5) in
# degrees near the equator, which its check_clustering data (standardised blobs) expects.
@parametrize_with_checks([SphericalDBSCAN(eps_km=55.0, min_weight=5.0)],
                         expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


# --------------------------------------------------------------------------------------
# What the expected failures check, on latitude/longitude data
# --------------------------------------------------------------------------------------


def _points(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return np.column_stack([48.0 + rng.normal(0, 0.2, n), 11.0 + rng.normal(0, 0.2, n)])


def _est():
    return SphericalDBSCAN(eps_km=10.0, min_weight=3.0)


def test_complex_input_refused_in_sklearn_words():
    X = _points().astype(complex)
    with pytest.raises(ValueError, match="Complex data not supported"):
        _est().fit(X)


def test_sparse_input_refused_in_sklearn_words():
    with pytest.raises(TypeError, match="Sparse data was passed"):
        _est().fit(sp.csr_matrix(_points()))


def test_empty_input_refused_in_sklearn_words():
    with pytest.raises(ValueError, match=r"0 sample\(s\) \(shape=\(0, 2\)\) while a minimum of 1 is required"):
        _est().fit(np.empty((0, 2)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_refused_in_sklearn_words(bad):
    X = _points()
    X[3, 1] = bad
    with pytest.raises(ValueError, match="Input X contains (NaN|infinity)"):
        _est().fit(X)


def test_all_zero_weights_refused_in_sklearn_words():
    with pytest.raises(ValueError, match="Sample weights must contain at least one non-zero number"):
        _est().fit(_points(), sample_weight=np.zeros(40))


def test_object_and_string_input():
    X = _points()
    np.testing.assert_array_equal(_est().fit(X.astype(object)).labels_, _est().fit(X).labels_)
    with pytest.raises(ValueError, match="could not convert|Unable to convert"):
        _est().fit(np.array([["a", "b"], ["c", "d"]], dtype=object))


def test_feature_names_in_from_a_dataframe():
    X = pd.DataFrame(_points(), columns=["lat", "lon"])
    est = _est().fit(X)
    assert est.n_features_in_ == 2
    assert est.feature_names_in_.tolist() == ["lat", "lon"]
    assert not hasattr(_est().fit(X.to_numpy()), "feature_names_in_")


def test_weights_as_a_list_and_as_repeats():
    X = _points()
    w = 1 + np.arange(40) % 3  # (a zero-weight point can be core and join clusters: no repeat equivalent)
    est = _est().fit(X, sample_weight=w.tolist())
    np.testing.assert_array_equal(est.labels_, _est().fit(X, sample_weight=w).labels_)
    # weight k is k copies of the point (sklearn's check_sample_weight_equivalence)
    rep = _est().fit(np.repeat(X, w, axis=0)).labels_
    np.testing.assert_array_equal(np.repeat(est.labels_, w), rep)


def test_pickle_pipeline_order_and_idempotence():
    X = _points(60, seed=3)
    est = _est().fit(X)
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.labels_, est.labels_)
    np.testing.assert_array_equal(make_pipeline(_est()).fit_predict(X), est.labels_)
    np.testing.assert_array_equal(_est().fit(np.asfortranarray(X)).labels_, est.labels_)
    np.testing.assert_array_equal(est.fit(X).labels_, _est().fit(X).labels_)
    perm = np.random.default_rng(1).permutation(60)
    shuffled = _est().fit(X[perm]).labels_
    # the same partition (label numbers follow the order of the points)
    pairs = set(zip(est.labels_[perm].tolist(), shuffled.tolist()))
    assert len(pairs) == len(set(est.labels_.tolist()))


def test_one_sample_and_params_untouched():
    est = SphericalDBSCAN(eps_km=10.0, min_weight=1.0)
    assert est.fit([[48.0, 11.0]]).labels_.tolist() == [0]
    assert est.get_params() == {"eps_km": 10.0, "min_weight": 1.0}
    with pytest.raises(ValueError, match="Expected 2D array, got 1D array"):
        _est().fit([48.0, 11.0])

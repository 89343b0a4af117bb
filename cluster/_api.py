"""The public entry point: a run, and (given the previous edition) ids kept across editions.

:func:`run` composes the layers below it: :func:`cluster.pipeline.run` finds, describes
and ranks one edition's clusters; :func:`cluster.editions.reuse_ids` then gives the
clusters that continue a cluster of the previous edition its id. It lives here, above both,
so that the pipeline never imports the editions tools.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from cluster.config import Config, load_config
from cluster.pipeline import RunResult
from cluster.pipeline import run as run_edition

__all__ = ["run"]


def run(data, config: Config | str | os.PathLike | Mapping[str, Any] | None = None, *,
        previous=None, **overrides) -> RunResult:
    """Find, describe and rank the clusters of geocoded activity records.

    Parameters
    ----------
    data : path-like, sequence of path-like, DataFrame or GeoDataFrame
        The records: files (CSV, Parquet, GeoParquet, GeoPackage) or a frame with the
        columns of a records file: ``metric``; ``lat`` and ``lon`` in WGS84 degrees, or
        point geometry (any CRS, reprojected); ``doc_id`` (a document at n rows counts
        1/n at each) and/or ``weight`` (pre-weighted sites); optional ``year``,
        ``country`` (ISO alpha-2), ``field``, ``institution``.
    config : Config, path-like or mapping, optional
        A :class:`~cluster.config.Config`, a TOML file or a mapping in the TOML layout
        (see :func:`~cluster.config.load_config`); default the shipped defaults.
    previous : path-like or Edition, optional
        Output folder of the previous edition (an earlier ``cluster run``): clusters that
        continue one of its clusters (matched by overlap, see
        :mod:`cluster.editions.matching`) take its id, so an id means the same place
        across editions (:func:`cluster.editions.reuse_ids`).
    **overrides
        Parameters that win over ``config``, by name: ``eps_km`` (DBSCAN radius, km),
        ``min_weight`` / ``min_share`` (mapping metric -> core threshold in weight units
        or as a fraction of the metric's world total), ``top_n``, ``year_start``,
        ``year_end``, ``bootstrap`` (replicates), ``on_bad_rows`` (``"fail"`` or
        ``"skip"``: rows breaking a rule left out, counted in ``info["rejected"]`` and
        listed in ``RunResult.rejects``), ``encoding`` (of CSV inputs), and any other key
        of the configuration whose name is unique (``max_names``, ``boundary_method``, ...).

    Returns
    -------
    RunResult
        ``clusters`` (GeoDataFrame in rank order), ``sites``, ``info``, ``config``;
        ``.write(out_dir)`` writes the outputs, ``.plot()`` draws a map.

    Raises
    ------
    UserInputError
        Invalid records (every problem with its row and column), a missing file or
        previous edition, or an invalid configuration (:class:`~cluster.errors.ConfigError`).

    Examples
    --------
    >>> import cluster
    >>> from cluster.demo import generate_demo
    >>> res = cluster.run(generate_demo(50_000, seed=1), eps_km=15)  # doctest: +SKIP
    >>> res.clusters.loc[:4, ["rank", "name", "economies", "score"]]  # doctest: +SKIP
    """
    config = load_config(config, overrides)
    if previous is None:
        return run_edition(data, config)
    from cluster.editions import Edition, load_edition, reuse_ids

    # Fail before the work, not after it.
    edition = previous if isinstance(previous, Edition) else load_edition(previous)
    return reuse_ids(run_edition(data, config), edition)

"""Editions of the ranking: compare two runs, and keep ids across them.

* :mod:`~cluster.editions._edition`: an edition read back from an output folder
  (:func:`load_edition`) or taken from a run in memory (:func:`edition_from_result`);
* :mod:`~cluster.editions.matching`: clusters of two editions matched by overlap
  (shared site activity, polygon intersection) and classified continuing, new, gone,
  split, merged (or regrouped);
* :mod:`~cluster.editions.compare`: ``compare.csv``, ``compare.md`` and ``run.json`` of
  ``cluster compare``, and :mod:`~cluster.editions.movers` its map ``compare.png``;
* :mod:`~cluster.editions.ids`: ``cluster run --previous DIR``, continuing clusters keep
  the previous edition's ids.

This package sits beside the pipeline (it reads runs and may use the outputs' helpers);
no stage imports it.
"""

from cluster.editions._edition import Edition, edition_from_result, load_edition
from cluster.editions.compare import Comparison, check_comparable, compare_editions, write_comparison
from cluster.editions.ids import reuse_ids
from cluster.editions.matching import MIN_OVERLAP, Matching, match_editions

__all__ = ["Comparison", "Edition", "MIN_OVERLAP", "Matching", "check_comparable", "compare_editions",
           "edition_from_result", "load_edition", "match_editions", "reuse_ids", "write_comparison"]

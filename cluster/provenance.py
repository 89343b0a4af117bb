"""Where records come from, as it travels with them: the synthetic-data flag and notice.

A frame made by :func:`cluster.demo.generate_demo` carries
``frame.attrs[PROVENANCE_ATTR] = {"synthetic": True, "notice": SYNTHETIC_NOTICE, "demo": {...}}``;
a Parquet file written by :func:`cluster.demo.write_demo` carries
``PARQUET_SYNTHETIC_KEY = b"true"`` in its schema metadata. Every output derived from
such records says it is synthetic.

A user *table* (a CSV, Parquet or GeoPackage that ``cluster index`` joins to the clusters)
is marked synthetic by a sidecar file next to it, ``<file>`` + ``TABLE_SIDECAR_SUFFIX``
(``universities.csv.provenance.json``) holding ``{"synthetic": true, "notice": ...}``, as
:mod:`cluster.composite.demo_tables` writes for the demo tables; a Parquet table may
instead carry ``PARQUET_SYNTHETIC_KEY`` in its schema metadata
(:func:`table_is_synthetic`).
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["PARQUET_DESCRIPTION_KEY", "PARQUET_SYNTHETIC_KEY", "PROVENANCE_ATTR", "SYNTHETIC_NOTICE",
           "SYNTHETIC_TABLE_NOTICE", "TABLE_SIDECAR_SUFFIX", "table_is_synthetic", "table_sidecar"]

SYNTHETIC_NOTICE = ("SYNTHETIC DEMO DATA: generated from GeoNames places, not real patents, "
                    "articles or deals.")

#: Key of ``DataFrame.attrs`` holding a frame's provenance.
PROVENANCE_ATTR = "innovation_clusters"

#: Parquet schema metadata keys: the synthetic flag and a description.
PARQUET_SYNTHETIC_KEY = b"innovation_clusters.synthetic"
PARQUET_DESCRIPTION_KEY = b"innovation_clusters.description"

#: Suffix of a user table's provenance sidecar (``universities.csv.provenance.json``).
TABLE_SIDECAR_SUFFIX = ".provenance.json"

SYNTHETIC_TABLE_NOTICE = ("SYNTHETIC DEMO TABLE: invented institutions, companies and airports at real "
                          "GeoNames cities; says nothing about real ones.")


def table_sidecar(path: str | Path) -> Path:
    """The provenance sidecar of a user table file (it may not exist).

    Parameters
    ----------
    path : path-like
        The table file.

    Returns
    -------
    pathlib.Path
        ``path`` with ``TABLE_SIDECAR_SUFFIX`` appended.
    """
    path = Path(path)
    return path.with_name(path.name + TABLE_SIDECAR_SUFFIX)


def table_is_synthetic(path: str | Path) -> bool:
    """Whether a user table says it is synthetic: its sidecar has ``"synthetic": true``, or
    (Parquet) its schema metadata has ``PARQUET_SYNTHETIC_KEY = b"true"``.

    Parameters
    ----------
    path : path-like
        The table file.

    Returns
    -------
    bool
        True for a table marked synthetic.
    """
    sidecar = table_sidecar(path)
    if sidecar.is_file():
        try:
            return bool(json.loads(sidecar.read_text("utf-8")).get("synthetic", False))
        except (ValueError, AttributeError):
            return False
    if Path(path).suffix.lower() == ".parquet" and Path(path).is_file():
        import pyarrow.parquet as pq

        try:
            meta = pq.read_schema(path).metadata or {}
        except Exception:  # pyarrow raises several types for a file that is not Parquet
            return False
        return meta.get(PARQUET_SYNTHETIC_KEY, b"").lower() == b"true"
    return False

"""Where records come from, as it travels with them: the synthetic-data flag and notice.

A frame made by :func:`cluster.demo.generate_demo` carries
``frame.attrs[PROVENANCE_ATTR] = {"synthetic": True, "notice": SYNTHETIC_NOTICE, "demo": {...}}``;
a Parquet file written by :func:`cluster.demo.write_demo` carries
``PARQUET_SYNTHETIC_KEY = b"true"`` in its schema metadata. Every output derived from
such records says it is synthetic.
"""

from __future__ import annotations

__all__ = ["PARQUET_DESCRIPTION_KEY", "PARQUET_SYNTHETIC_KEY", "PROVENANCE_ATTR", "SYNTHETIC_NOTICE"]

SYNTHETIC_NOTICE = ("SYNTHETIC DEMO DATA: generated from GeoNames places, not real patents, "
                    "articles or deals.")

#: Key of ``DataFrame.attrs`` holding a frame's provenance.
PROVENANCE_ATTR = "innovation_clusters"

#: Parquet schema metadata keys: the synthetic flag and a description.
PARQUET_SYNTHETIC_KEY = b"innovation_clusters.synthetic"
PARQUET_DESCRIPTION_KEY = b"innovation_clusters.description"

"""The synthetic demo world (see :mod:`cluster.demo._world` for the model).

Only generated when asked for: :func:`generate_demo` returns a records frame,
:func:`write_demo` writes it to Parquet flagged as synthetic.
"""

from cluster.demo._world import FIELDS, HUBS, METRICS, generate_demo, hub_fields, write_demo
from cluster.provenance import PARQUET_SYNTHETIC_KEY, SYNTHETIC_NOTICE

__all__ = ["FIELDS", "HUBS", "METRICS", "PARQUET_SYNTHETIC_KEY", "SYNTHETIC_NOTICE", "generate_demo", "hub_fields",
           "write_demo"]

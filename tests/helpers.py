"""Helpers shared by the tests: small hand-built records (provenance in each docstring).

Imported as ``from helpers import ...`` (pytest puts ``tests/`` on ``sys.path``); fixtures
stay in ``conftest.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def make_records(points, metric="patents", *, per_site=5, doc_prefix="d"):
    """Records: ``per_site`` single-location documents at each (lat, lon[, country])."""
    rows = []
    for i, p in enumerate(points):
        lat, lon = p[0], p[1]
        country = p[2] if len(p) > 2 else None
        for k in range(per_site):
            rows.append({"metric": metric, "doc_id": f"{doc_prefix}{i}-{k}", "lat": lat, "lon": lon,
                         "country": country})
    return pd.DataFrame(rows)


def offsets_km(lat0, lon0, dx_km, dy_km):
    """Point displaced by (east, north) kilometres (small-distance approximation)."""
    lat = lat0 + dy_km / 111.195
    lon = lon0 + dx_km / (111.195 * np.cos(np.radians(lat0)))
    return lat, lon


def two_city_csv(path):
    """A small records CSV (40 patents around Munich, 40 VC deals around Berlin): two clusters
    at thresholds of 3, for tests of whole runs through the command line."""
    rows = ["metric,doc_id,lat,lon"]
    for i in range(40):
        rows.append(f"patents,p{i},{48.1 + (i % 7) * 0.01},{11.5 + (i % 5) * 0.01}")
        rows.append(f"vc,v{i},{52.5 + (i % 3) * 0.01},{13.4 + (i % 4) * 0.01}")
    path.write_text("\n".join(rows) + "\n")
    return path

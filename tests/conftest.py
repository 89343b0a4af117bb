"""Shared fixtures: small hand-built records and configs (provenance in each docstring)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cluster.config import load_config


@pytest.fixture
def config():
    """Default configuration with absolute thresholds suited to tiny inputs."""
    return load_config(overrides={"min_weight": {"patents": 3.0, "publications": 3.0, "vc": 3.0}})


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


@pytest.fixture
def write_csv(tmp_path):
    def _write(df: pd.DataFrame, name="records.csv"):
        path = tmp_path / name
        df.to_csv(path, index=False)
        return path

    return _write


def offsets_km(lat0, lon0, dx_km, dy_km):
    """Point displaced by (east, north) kilometres (small-distance approximation)."""
    lat = lat0 + dy_km / 111.195
    lon = lon0 + dx_km / (111.195 * np.cos(np.radians(lat0)))
    return lat, lon

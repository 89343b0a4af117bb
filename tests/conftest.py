"""Shared fixtures (helpers that are not fixtures live in ``helpers.py``)."""

from __future__ import annotations

import pandas as pd
import pytest

from cluster.config import load_config


@pytest.fixture
def config():
    """Default configuration with absolute thresholds suited to tiny inputs."""
    return load_config(overrides={"min_weight": {"patents": 3.0, "publications": 3.0, "vc": 3.0}})


@pytest.fixture
def write_csv(tmp_path):
    def _write(df: pd.DataFrame, name="records.csv"):
        path = tmp_path / name
        df.to_csv(path, index=False)
        return path

    return _write

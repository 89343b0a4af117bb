"""Shared fixtures (helpers that are not fixtures live in ``helpers.py``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

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


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory):
    """Address of a Dask scheduler with two single-threaded worker processes (all on
    127.0.0.1), started with Dask's own command line as a user would on their machines;
    the processes inherit the environment as it is when the fixture starts."""
    work = tmp_path_factory.mktemp("dask")
    info = work / "scheduler.json"
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", "0", "--no-dashboard", "--scheduler-file", str(info)],
                              cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        for _ in range(600):
            if info.exists() and info.stat().st_size:
                break
            time.sleep(0.1)
        for _ in range(2):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file", str(info),
                 "--nworkers", "1", "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"],
                cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        address = json.loads(info.read_text())["address"]
        from distributed import Client

        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=120)
        yield address
    finally:
        for p in procs[::-1]:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()

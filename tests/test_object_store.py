"""Records at object-store addresses (s3://), read through fsspec by the embedded engine
and by Dask workers, against a real S3 API served on loopback (moto's server).

The same records give the same sites, bit for bit, whether they are read from a local
folder, an S3 prefix, an S3 glob or by the workers of a Dask cluster.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import cluster
from cluster.demo import generate_demo
from cluster.errors import UserInputError

pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")
pytestmark = pytest.mark.slow

BUCKET = "records"


@pytest.fixture(scope="module")
def s3():
    """An S3 endpoint on 127.0.0.1 with one bucket; the AWS_* variables point every
    client (this process, its children, the Dask workers started after it) at it."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "test",
           "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem()
    fs.mkdir(BUCKET)
    try:
        yield fs
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.stop()


@pytest.fixture(scope="module")
def world(s3, tmp_path_factory):
    """The demo world (30,000 records) as hive-partitioned Parquet, locally and at
    s3://records/world/ (two files per metric, rows shuffled: documents span files)."""
    root = tmp_path_factory.mktemp("world") / "world"
    rows = generate_demo(30_000, 7).sample(frac=1.0, random_state=3).reset_index(drop=True)
    for metric, part in rows.groupby("metric", observed=True):
        folder = root / f"metric={metric}"
        folder.mkdir(parents=True)
        for i, idx in enumerate(np.array_split(np.arange(len(part)), 2)):
            part.drop(columns="metric").iloc[idx].to_parquet(folder / f"part-{i}.parquet", index=False)
    for f in sorted(root.rglob("*.parquet")):
        s3.put(str(f), f"{BUCKET}/world/{f.relative_to(root).as_posix()}")
    # The same rows in flat files with a metric column.
    flat = root.parent / "flat"
    flat.mkdir()
    for i, idx in enumerate(np.array_split(np.arange(len(rows)), 3)):
        rows.iloc[idx].to_parquet(flat / f"part-{i}.parquet", index=False)
        s3.put(str(flat / f"part-{i}.parquet"), f"{BUCKET}/flat/part-{i}.parquet")
    return root


def _same_sites(a, b):
    pd.testing.assert_frame_equal(a.sites.drop(columns="weight"), b.sites.drop(columns="weight"))
    assert a.sites["weight"].to_numpy().tobytes() == b.sites["weight"].to_numpy().tobytes()


def test_a_prefix_and_a_glob_on_s3_give_the_local_sites(world, tmp_path):
    local = cluster.run(world)
    prefix = cluster.run(f"s3://{BUCKET}/world")
    _same_sites(local, prefix)
    # A glob reads the key=value folders below its fixed part as columns, as a prefix does.
    _same_sites(local, cluster.run(f"s3://{BUCKET}/world/**/*.parquet"))
    _same_sites(cluster.run(str(world.parent / "flat" / "part-*.parquet")),
                cluster.run(f"s3://{BUCKET}/flat/part-*.parquet"))
    inputs = prefix.info["inputs"]
    assert len(inputs) == 6 and all(f["path"].startswith(f"s3://{BUCKET}/world/metric=") for f in inputs)
    assert all(f["etag"] and f["bytes"] > 0 and f["records"] > 0 for f in inputs)
    assert sum(f["records"] for f in inputs) == 30_000
    local.write(tmp_path / "local")
    prefix.write(tmp_path / "s3")
    assert (tmp_path / "local/ranking.csv").read_bytes() == (tmp_path / "s3/ranking.csv").read_bytes()


def test_dask_workers_read_s3_records(s3, world, scheduler):
    # The scheduler fixture starts after s3: its workers inherit the AWS_* variables.
    local = cluster.run(world)
    spread = cluster.run(f"s3://{BUCKET}/world", scheduler=scheduler)
    _same_sites(local, spread)
    assert local.clusters["cluster_id"].tolist() == spread.clusters["cluster_id"].tolist()


def test_cli_reads_an_s3_prefix(world, tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "cluster", "run", "-q", "--input", f"s3://{BUCKET}/world",
                           "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    info = json.loads((out / "run.json").read_text())
    assert info["counts"]["records"] == 30_000 and info["inputs"][0]["path"].startswith("s3://")


def test_object_store_mistakes_are_user_errors(s3, world):
    with pytest.raises(UserInputError, match=r"s3://records/nowhere does not exist"):
        cluster.run(f"s3://{BUCKET}/nowhere")
    with pytest.raises(UserInputError, match=r"matches no file"):
        cluster.run(f"s3://{BUCKET}/world/**/*.csv")
    s3.pipe(f"{BUCKET}/text/r.csv", b"metric,doc_id,lat,lon\npatents,A,48.1,11.5\n")
    with pytest.raises(UserInputError, match=r"s3://records/text/r\.csv: object-store inputs are read as Parquet"):
        cluster.run(f"s3://{BUCKET}/text/r.csv")


def test_a_bad_row_on_s3_is_named_with_its_address_row_and_column(s3, tmp_path):
    rows = pd.DataFrame({"metric": ["patents"] * 3, "doc_id": ["A", "B", "C"], "lat": [48.1, 48.2, 95.0],
                         "lon": [11.5, 11.6, 11.7]})
    rows.to_parquet(tmp_path / "bad.parquet", index=False)
    s3.put(str(tmp_path / "bad.parquet"), f"{BUCKET}/bad/bad.parquet")
    with pytest.raises(UserInputError, match=r"s3://records/bad/bad\.parquet, row 3, column 'lat': latitude"):
        cluster.run(f"s3://{BUCKET}/bad/bad.parquet")

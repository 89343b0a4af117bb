"""Probe the cases of issue 21 (nothing lost, nothing hung) through the command line.

Runs each case as a user would, against the checkout at ``--tree`` (default: this one),
and prints a table: case, held or broke, and what was seen. Point ``--tree`` at an older
checkout (``git worktree add /tmp/old <commit>``) to compare before and after; every case
is judged only by what a user sees (exit codes, files left, time taken), so the same
probe runs on both.

Usage: ``python scripts/probe_faults.py [--tree DIR] [--only SUBSTRING]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

CASES = []


def case(name):
    def register(fn):
        CASES.append((name, fn))
        return fn
    return register


class Probe:
    def __init__(self, tree: Path, work: Path):
        self.tree, self.work = tree, work
        self.env = {**os.environ, "PYTHONPATH": str(tree), "XDG_CACHE_HOME": str(work / "cache"),
                    "NUMBA_CACHE_DIR": str(work / "numba")}
        self.records = work / "r.csv"
        import csv

        with open(self.records, "w", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(["metric", "doc_id", "lat", "lon", "institution", "field"])
            for i in range(40):
                w.writerow(["patents", f"p{i}", 48.1 + (i % 7) * 0.01, 11.5 + (i % 5) * 0.01, '=HYPERLINK("x")',
                            "+cmd"])
                w.writerow(["vc", f"v{i}", 52.5 + (i % 3) * 0.01, 13.4 + (i % 4) * 0.01, "@SUM(A1)", "-2+3"])

    def cluster(self, *args, timeout=120, env=None, **kw):
        cmd = [sys.executable, "-m", "cluster", *args]
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env or self.env,
                                  cwd=kw.get("cwd", self.work))
        except subprocess.TimeoutExpired:
            return None

    def run(self, out, *extra, inp=None, timeout=120, **kw):
        return self.cluster("run", "-q", "--input", str(inp or self.records), "--out", str(out), "--eps-km", "10",
                            "--min-weight", "patents=3", "--min-weight", "vc=3", "--min-weight", "publications=3",
                            *extra, timeout=timeout, **kw)

    def d(self, name) -> Path:
        p = self.work / name
        p.mkdir(parents=True, exist_ok=True)
        return p


def tree_of(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def code(done) -> str:
    return "no end" if done is None else f"exit {done.returncode}"


@case("1 folder with a stray run.json not wiped")
def _(p):
    f = p.d("c1")
    (f / "d").mkdir()
    (f / "d" / "n").write_text("k")
    (f / "run.json").write_text("{}")
    done = p.run(f)
    return (f / "d" / "n").exists(), code(done)


@case("2 input inside the previous outputs kept")
def _(p):
    f = p.d("c2") / "prev"
    p.run(f)
    shutil.copy(p.records, f / "r.csv")
    done = p.run(f, inp=f / "r.csv")
    return (f / "r.csv").exists(), code(done)


@case("3 compare A B --out A keeps A")
def _(p):
    a, b = p.d("c3") / "A", p.d("c3") / "B"
    p.run(a)
    p.run(b)
    before = tree_of(a)
    done = p.cluster("compare", "-q", str(a), str(b), "--out", str(a))
    return tree_of(a) == before, code(done)


@case("4 no fork in a process that runs threads")
def _(p):
    driver = ("import os, sys\ncalls = []\nreal = os.fork\n"
              "def fork():\n    calls.append(1)\n    return real()\n"
              "os.fork = fork\nfrom cluster.cli import main\n"
              "rc = main(sys.argv[1:])\nprint('FORKS', len(calls))\n")
    out = p.d("c4") / "out"
    done = subprocess.run([sys.executable, "-c", driver, "-q", "run", "--input", str(p.records), "--out", str(out),
                           "--min-weight", "patents=3", "--min-weight", "vc=3", "--min-weight", "publications=3"],
                          capture_output=True, text=True, env={**p.env, "INNOVATION_CLUSTERS_SIDE_PROCESS": "1"},
                          timeout=300, cwd=p.work)
    forks = [ln for ln in done.stdout.splitlines() if ln.startswith("FORKS")]
    wrote = (out / "map.png").is_file()
    return forks == ["FORKS 0"] and wrote, f"{forks[0] if forks else code(done)}, map.png written: {wrote}"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@case("5a scheduler without workers ends")
def _(p):
    port = _free_port()
    sched = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                              "--port", str(port), "--no-dashboard"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=p.env)
    try:
        time.sleep(4)
        t0 = time.monotonic()
        done = p.run(p.d("c5") / "out", "--scheduler", f"tcp://127.0.0.1:{port}", timeout=90)
        return done is not None and done.returncode not in (0, 1), f"{code(done)} after {time.monotonic() - t0:.0f} s"
    finally:
        sched.kill()


@case("5b HTTP server as scheduler recognised")
def _(p):
    class Quiet(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

    server = HTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        t0 = time.monotonic()
        done = p.run(p.d("c5b") / "out", "--scheduler", f"tcp://127.0.0.1:{server.server_address[1]}", timeout=90)
        return done is not None and done.returncode not in (0, 1), f"{code(done)} after {time.monotonic() - t0:.0f} s"
    finally:
        server.shutdown()


@case("6a composite framework 10,000 groups deep ends")
def _(p):
    fw = p.d("c6") / "deep.toml"
    lines = ['[index]', 'name = "deep"', '[[group]]', 'code = "g0"']
    for i in range(1, 10_000):
        lines += ['[[group]]', f'code = "g{i}"', f'parent = "g{i - 1}"']
    lines += ['[[indicator]]', 'code = "patents"', 'parent = "g9999"']
    fw.write_text("\n".join(lines) + "\n")
    run = p.d("c6") / "run"
    p.run(run)
    done = p.cluster("index", "-q", "--run", str(run), "--framework", str(fw), "--out", str(p.d("c6") / "ix"),
                     timeout=120)
    return done is not None and done.returncode in (0, 2), code(done)


@case("6b configuration with 1,000,000 metrics ends")
def _(p):
    cfg = p.d("c6b") / "many.toml"
    with open(cfg, "w") as fh:
        for i in range(1_000_000):
            fh.write(f"[metrics.m{i}]\nmin_weight = 1\n")
    done = p.run(p.d("c6b") / "out", "--config", str(cfg), timeout=120)
    return done is not None and done.returncode == 2, code(done)


@case("7 no formula cells in ranking.csv/profiles.csv")
def _(p):
    out = p.d("c7") / "out"
    p.run(out)
    cells = []
    for name in ("ranking.csv", "profiles.csv"):
        if (out / name).exists():
            import csv

            with open(out / name, newline="") as fh:
                cells += [c for row in csv.reader(fh) for c in row]
    bad = [c for c in cells if c[:1] in ("=", "+", "@", "\t", "\r") or (c[:1] == "-" and not _number(c))]
    return bool(cells) and not bad, f"{len(bad)} formula cell(s)"


def _number(text):
    try:
        float(text)
        return True
    except ValueError:
        return False


@case("8 disk full: not a bug, previous outputs intact")
def _(p):
    if os.geteuid() != 0:
        return None, "needs root (tmpfs)"
    mnt = p.d("c8")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mnt)]).returncode:
        return None, "cannot mount"
    try:
        out = mnt / "out"
        small = p.work / "small.csv"
        small.write_text("metric,doc_id,lat,lon\n" + "".join(f"patents,d{i},48.1,11.5\n" for i in range(10)))
        p.run(out, inp=small)
        before = tree_of(out) if out.exists() else {}
        fill = mnt / "fill"
        subprocess.run(["dd", "if=/dev/zero", f"of={fill}", "bs=1k", "count=100000"], capture_output=True)
        done = p.run(out)
        kept = (tree_of(out) if out.exists() else {}) == before
        return done is not None and done.returncode not in (0, 1) and kept, f"{code(done)}, previous kept: {kept}"
    finally:
        subprocess.run(["umount", str(mnt)])


@case("9 damaged numba cache rebuilt")
def _(p):
    env = {**p.env, "NUMBA_CACHE_DIR": str(p.work / "numba9")}
    p.run(p.d("c9") / "a", env=env, timeout=600)
    for f in (p.work / "numba9").rglob("*"):
        if f.suffix in (".nbi", ".nbc"):
            f.write_bytes(f.read_bytes()[:20])
    done = p.run(p.d("c9") / "b", env=env, timeout=600)
    return done is not None and done.returncode == 0, code(done)


@case("10a --out . refused before the run")
def _(p):
    w = p.d("c10")
    t0 = time.monotonic()
    done = p.run(".", cwd=w)
    return done is not None and done.returncode == 2 and time.monotonic() - t0 < 30, code(done)


@case("10b --out symbolic link kept")
def _(p):
    target, link = p.d("c10b") / "t", p.work / "c10b" / "link"
    target.mkdir()
    link.symlink_to(target)
    done = p.run(link)
    return link.is_symlink(), code(done)


def _edition(p, name):
    e = p.d("c11") / name
    if not (e / "run.json").exists():
        p.run(e)
    return e


def _broken_compare(p, how):
    good = _edition(p, "good")
    bad = p.work / "c11" / f"bad-{how}"
    shutil.rmtree(bad, ignore_errors=True)
    shutil.copytree(good, bad)
    if how == "list":
        (bad / "run.json").write_text("[1]")
    elif how == "types":
        info = json.loads((bad / "run.json").read_text())
        info["world_totals"] = "x"
        (bad / "run.json").write_text(json.dumps(info))
    elif how == "gpkg":
        (bad / "clusters.gpkg").write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    elif how == "parquet":
        import pyarrow.parquet as pq

        t = pq.read_table(bad / "clusters.parquet")
        pq.write_table(t.drop(["cluster_id"]), bad / "clusters.parquet")
    done = p.cluster("compare", "-q", str(bad), str(good), "--out", str(p.work / "c11" / f"cmp-{how}"))
    prev = p.run(p.work / "c11" / f"prev-{how}", "--previous", str(bad))
    ok = done is not None and prev is not None and done.returncode == 2 and prev.returncode == 2
    return ok, f"compare {code(done)}, --previous {code(prev)}"


for _how in ("list", "types", "gpkg", "parquet"):
    case(f"11 broken edition ({_how})")(lambda p, how=_how: _broken_compare(p, how))


def _option(p, name, *args):
    done = p.run(p.d("c11o") / name, *args, timeout=120)
    return done is not None and done.returncode == 2, code(done)


case("11 --scheduler foo://x")(lambda p: _option(p, "sch", "--scheduler", "foo://x"))
case("11 --memory-limit 20MB")(lambda p: _option(p, "mem", "--memory-limit", "20MB"))
case("11 --eps-km 1e-300")(lambda p: _option(p, "eps", "--eps-km", "1e-300"))
case("11 --bootstrap 1e12 (as 10**12)")(lambda p: _option(p, "bs", "--bootstrap", str(10**12)))


def _config_option(p, name, text):
    cfg = p.d("c11c") / f"{name}.toml"
    cfg.write_text(text)
    return _option(p, f"cfg-{name}", "--config", str(cfg))


case("11 [engine] threads = 100000")(lambda p: _config_option(p, "threads", "[engine]\nthreads = 100000\n"))
case("11 [boundaries] disc_segments = 1e8")(
    lambda p: _config_option(p, "disc", "[boundaries]\ndisc_segments = 100000000\n"))


@case("11 one record of 50 MB named, not dropped")
def _(p):
    big = p.work / "big.csv"
    with open(big, "w") as fh:
        fh.write("metric,doc_id,lat,lon\n" + "".join(f"patents,d{i},48.1,11.5\n" for i in range(30)))
        fh.write("patents," + "x" * 50_000_000 + ",48.1,11.5\n")
    done = p.run(p.d("c11b") / "out", inp=big)
    return done is not None and done.returncode == 2, code(done)


@case("11 path longer than PATH_MAX")
def _(p):
    done = p.run("/tmp/" + "a/" * 2100 + "out")
    return done is not None and done.returncode in (2, 3), code(done)


@case("11 GeoNames cache with bad rows")
def _(p):
    env = {**p.env, "XDG_CACHE_HOME": str(p.work / "cache11")}
    p.run(p.d("c11g") / "a", env=env)
    import pandas as pd

    files = list((p.work / "cache11").rglob("*.parquet"))
    for f in files:
        df = pd.read_parquet(f)
        if "section_of" in df:
            df.loc[df.index[0], "section_of"] = len(df) + 10
            df.to_parquet(f, index=False)
    done = p.run(p.d("c11g") / "b", env=env)
    return bool(files) and done is not None and done.returncode == 0, f"{code(done)} ({len(files)} cache file(s))"


@case("12 SIGTERM leaves no temporary folder")
def _(p):
    w = p.d("c12")
    proc = subprocess.Popen([sys.executable, "-m", "cluster", "run", "-q", "--out", str(w / "out"),
                             "--demo-records", "300000"], env=p.env, cwd=w, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not any(".tmp-" in x.name for x in w.iterdir()) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # SIGTERM while the outputs are being written
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)
    left = [x.name for x in w.iterdir() if ".tmp-" in x.name]
    return not left, f"exit {proc.returncode}, left {left}"


@case("12 [metrics.Patents] not silently unusable")
def _(p):
    cfg = p.d("c12m") / "c.toml"
    cfg.write_text("[metrics.Patents]\nmin_weight = 3\n")
    small = p.work / "pat.csv"
    small.write_text("metric,doc_id,lat,lon\n" + "".join(f"patents,d{i},48.1,11.5\n" for i in range(10)))
    done = p.run(p.d("c12m") / "out", "--config", str(cfg), inp=small)
    worded = done is not None and (done.returncode == 0 or "Patents" in done.stderr and "unknown metric"
                                   not in done.stderr)
    return worded, code(done)


@case("12 1,000,000 bad rows counted in the headline")
def _(p):
    bad = p.work / "bad.csv"
    with open(bad, "w") as fh:
        fh.write("metric,doc_id,lat,lon\n")
        fh.write("".join(f"patents,d{i},95.0,11.5\n" for i in range(1_000_000)))
    done = p.run(p.d("c12b") / "out", inp=bad, timeout=300)
    return done is not None and "1,000,000 row(s)" in done.stderr, code(done)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree", type=Path, default=Path(__file__).resolve().parents[1])
    ap.add_argument("--only", default="")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="cluster-probe-") as tmp:
        p = Probe(args.tree.resolve(), Path(tmp))
        for name, fn in CASES:
            if args.only and args.only not in name:
                continue
            t0 = time.monotonic()
            try:
                held, seen = fn(p)
            except Exception as exc:  # the probe itself failed on this case
                held, seen = False, f"probe error: {type(exc).__name__}: {exc}"[:120]
            rows.append((name, held, seen, time.monotonic() - t0))
            print(f"{name:<48} {'held' if held else 'skip' if held is None else 'BROKE':<6} {seen}", flush=True)
    n_held = sum(1 for r in rows if r[1])
    n_broke = sum(1 for r in rows if r[1] is False)
    print(f"\n{n_held} held, {n_broke} broke, {len(rows) - n_held - n_broke} skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())

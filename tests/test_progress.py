"""Progress bars (cluster._progress): on a terminal only, off with -q, the same items either way."""

from __future__ import annotations

import io
import logging

import pytest

from cluster import _progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _automatic(monkeypatch):
    monkeypatch.setattr(_progress, "_enabled", None)
    monkeypatch.setattr(_progress, "DELAY_S", 0.0)  # draw at once, however short the loop


def test_no_bar_when_stderr_is_not_a_terminal(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    items = [1, 2, 3]
    assert not _progress.enabled()
    assert _progress.progress(items, desc="boundaries") is items  # untouched: no wrapper at all
    with _progress.bar(desc="writing outputs", total=2) as done:
        done.update()
        done.set_postfix_str("map.png")
    assert err.getvalue() == ""


def test_a_bar_on_a_terminal_yields_the_same_items(monkeypatch):
    err = _Terminal()
    monkeypatch.setattr("sys.stderr", err)
    assert _progress.enabled()
    assert list(_progress.progress(iter(range(5)), desc="boundaries", total=5, unit="cluster")) == list(range(5))
    assert "boundaries:" in err.getvalue() and "/5 " in err.getvalue()  # drawn (then cleared: leave=False)


def test_set_enabled_overrides_the_terminal_check(monkeypatch):
    monkeypatch.setattr("sys.stderr", _Terminal())
    _progress.set_enabled(False)
    assert not _progress.enabled()
    monkeypatch.setattr("sys.stderr", io.StringIO())
    _progress.set_enabled(True)
    assert _progress.enabled()
    _progress.set_enabled(None)
    assert not _progress.enabled()


@pytest.mark.parametrize("verbose, quiet, expected", [(0, 0, True), (1, 0, True), (0, 1, False), (0, 2, False)])
def test_cli_quiet_turns_progress_off(monkeypatch, verbose, quiet, expected):
    from cluster.cli._main import _setup_logging

    logger = logging.getLogger("cluster")
    saved = logger.handlers[:], logger.level, logger.propagate
    monkeypatch.setattr("sys.stderr", _Terminal())
    try:
        _setup_logging(verbose, quiet)
        assert _progress.enabled() is expected
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


# ---- notebooks, progress=False and the waits that were silent ----------------------------

class _Shell:
    """Stands for IPython's kernel shell (its class name is what is checked)."""


def _kernel(monkeypatch):
    import sys
    import types

    shell = type("ZMQInteractiveShell", (_Shell,), {})()
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))


def test_a_notebook_gets_bars_without_a_terminal(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    assert not _progress.enabled()
    _kernel(monkeypatch)
    assert _progress.in_notebook() and _progress.enabled()
    monkeypatch.setitem(__import__("sys").modules, "ipywidgets", None)  # not installed: a text bar
    assert list(_progress.progress(range(3), desc="bootstrap", unit="replicate")) == [0, 1, 2]
    assert "bootstrap:" in err.getvalue()


def test_setting_turns_bars_off_inside_a_block_only(monkeypatch):
    monkeypatch.setattr("sys.stderr", _Terminal())
    with _progress.setting(False):
        assert not _progress.enabled()
    assert _progress.enabled()
    with _progress.setting(None):
        assert _progress.enabled()


def test_waiting_shows_the_time_elapsed(monkeypatch):
    import time

    err = _Terminal()
    monkeypatch.setattr("sys.stderr", err)
    with _progress.waiting("compiling the clustering engine (once)", every_s=0.01):
        time.sleep(0.1)
    assert "compiling the clustering engine (once): 00:00" in err.getvalue()
    err2 = io.StringIO()
    monkeypatch.setattr("sys.stderr", err2)
    with _progress.waiting("compiling", every_s=0.01):
        time.sleep(0.05)
    assert err2.getvalue() == ""


def test_the_engine_shows_its_compilation(monkeypatch):
    from cluster.engine import dbscan

    shown = []
    monkeypatch.setattr(dbscan, "_checked_cache", False)
    monkeypatch.setattr(dbscan, "compile_cache_state", lambda: (False, "/cache"))
    monkeypatch.setattr(_progress, "waiting", lambda desc: shown.append(desc) or _progress.setting(None))
    dbscan.dbscan_sphere([0.0, 0.0], [0.0, 0.01], eps_km=5.0, min_weight=2.0)
    assert shown == ["compiling the clustering engine (once)"]
    dbscan.dbscan_sphere([0.0, 0.0], [0.0, 0.01], eps_km=5.0, min_weight=2.0)
    assert len(shown) == 1  # once per process


def _bars(monkeypatch):
    """Record the labels of every bar drawn."""
    drawn = []
    monkeypatch.setattr("sys.stderr", _Terminal())
    real = _progress._tqdm

    def recording():
        cls = real()

        def make(*args, **kw):
            drawn.append(kw.get("desc"))
            return cls(*args, **kw)
        return make
    monkeypatch.setattr(_progress, "_tqdm", recording)
    return drawn


def test_bootstrap_and_sweep_show_progress_and_progress_false_hides_it(monkeypatch):
    from helpers import make_records, offsets_km

    import cluster
    from cluster.pipeline import load_records
    from cluster.stages.sites import prepare_sites
    from cluster.tuning import run_sweep

    pts = [(*offsets_km(48.14, 11.58, dx, dy), "DE") for dx, dy in [(0, 0), (1, 0), (0, 1)]]
    records = make_records(pts, per_site=5)
    drawn = _bars(monkeypatch)
    res = cluster.run(records, min_weight={"patents": 5, "publications": 5, "vc": 5}, bootstrap=3)
    assert "bootstrap" in drawn
    config = res.config
    prepared = prepare_sites(load_records(records, config)[0], config)
    run_sweep(prepared.sites, prepared.totals, config, [5.0, 10.0], [1.0])
    assert "sweep" in drawn
    drawn.clear()
    cluster.run(records, min_weight={"patents": 5, "publications": 5, "vc": 5}, bootstrap=3, progress=False)
    assert drawn == []


def test_index_monte_carlo_shows_progress(monkeypatch):
    import numpy as np

    from cluster.composite import uncertainty

    drawn = _bars(monkeypatch)
    calls = []
    monkeypatch.setattr(uncertainty, "_run", lambda plan, treated, unc, draws, j: calls.append(j) or np.arange(3))
    monkeypatch.setattr(uncertainty, "_draw", lambda *a: {"weights": None})
    monkeypatch.setattr(uncertainty, "evaluate", lambda plan, treated: (None, np.zeros((3, 1))))
    unc = type("U", (), {"samples": 4, "seed": 0, "tolerance": 1.0, "max_samples": 4,
                         "factors": lambda self, n: ["weights"]})()
    plan = type("P", (), {"indicators": ["a"]})()
    uncertainty.monte_carlo(plan, np.zeros((3, 1)), unc, ["x", "y", "z"])
    assert drawn == ["Monte Carlo"] and len(calls) == 4 * 3

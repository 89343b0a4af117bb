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

"""The ``cluster`` command line: parses arguments and calls the public API."""

from cluster.cli._main import main

__all__ = ["main"]

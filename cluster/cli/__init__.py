"""The ``cluster`` command line: parses arguments and calls the public API."""

from cluster.cli._main import console, main

__all__ = ["console", "main"]

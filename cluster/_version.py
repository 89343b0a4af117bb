"""Version of the package (one place, read by the API, run.json and packaging)."""

__version__ = "0.1.0"

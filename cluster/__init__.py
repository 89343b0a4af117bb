"""innovation-clusters: GII-style science-and-technology clusters from geocoded activity."""

__version__ = "0.1.0"

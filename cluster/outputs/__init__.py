"""Everything a run writes: GIS layers, tables, maps and run.json, all at once or not at all."""

__all__ = ["OUTPUT_FILES", "atomic_output_dir", "write_outputs"]


# Imported on first use (PEP 562): `cluster run` checks its output directory with
# cluster._atomic before the run starts, and the writers' modules (geopandas,
# pyogrio) are not needed until the run has a result.
def __getattr__(name: str):
    if name not in __all__:
        raise AttributeError(f"module 'cluster.outputs' has no attribute {name!r}")
    from cluster.outputs import files

    return getattr(files, name)

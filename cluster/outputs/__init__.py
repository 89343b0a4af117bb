"""Everything a run writes: GIS layers, tables, maps and run.json, all at once or not at all."""

from cluster.outputs.files import OUTPUT_FILES, atomic_output_dir, write_outputs

__all__ = ["OUTPUT_FILES", "atomic_output_dir", "write_outputs"]

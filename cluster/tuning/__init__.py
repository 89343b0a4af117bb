"""Tools for choosing the density thresholds: threshold sweeps and the k-distance curve.

They sit on top of the stages (:mod:`cluster.stages`) and only call down.
"""

from cluster.tuning.kdist import kdist_table, plot_kdist, weighted_kdist
from cluster.tuning.sweep import plot_heatmap, run_sweep

__all__ = ["kdist_table", "plot_heatmap", "plot_kdist", "run_sweep", "weighted_kdist"]

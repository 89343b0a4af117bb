"""The stages of a run, in the order the data flows through them.

1. :mod:`cluster.ingest` (a package of its own, below the stages) reads, validates and
   reduces records to site groups;
2. :mod:`~cluster.stages.sites` sums the groups into weighted sites (fractional counting);
3. :mod:`~cluster.stages.clustering` runs DBSCAN per metric and overlays the footprints;
4. :mod:`~cluster.stages.boundaries` (and :mod:`~cluster.stages.concave`) draws boundaries;
5. :mod:`~cluster.stages.places` and :mod:`~cluster.stages.population` give names,
   economies and population;
6. :mod:`~cluster.stages.ranking` scores and ranks; :mod:`~cluster.stages.membership`
   ranks from site memberships alone (for bootstrap and tuning), and
   :mod:`~cluster.stages.bootstrap` adds rank intervals.

Each stage is a plain function of plain data; :mod:`cluster.pipeline` calls them in
order. A stage imports only the engine, the configuration, the errors and earlier
stages, never the outputs, the tuning tools or the command line.
"""

"""Cluster ids that mean the same place across editions (``cluster run --previous DIR``).

A new run names each cluster ``g`` + the geohash of its heaviest site; when that site
moves, so does the id, although the place is the same. With a previous edition, the
run's clusters are matched to it (:mod:`cluster.editions.matching`) and every
``continuing`` cluster takes the previous edition's id. Clusters that are new, split or
merged keep their geohash ids (a split's pieces are not the old cluster, and neither is
a merger). Ids stay unique: a geohash id equal to an id taken over from the previous
edition gets ``-2``, ``-3`` ... in rank order. Ranks are not recomputed (ties between
equal scores stay broken by the geohash ids), so the same inputs, configuration and
previous edition give the same ids.
"""

from __future__ import annotations

import dataclasses
import logging

from cluster.editions._edition import Edition, edition_from_result
from cluster.editions.compare import check_comparable
from cluster.editions.matching import MIN_OVERLAP, match_editions

log = logging.getLogger(__name__)


def reuse_ids(result, previous: Edition, *, min_overlap: float = MIN_OVERLAP):
    """The run ``result`` with the ids of its continuing clusters replaced by the
    previous edition's.

    Parameters
    ----------
    result : RunResult
        A finished run (its ``clusters``, ``sites`` and ``profiles`` carry ``cluster_id``).
    previous : Edition
        The previous edition (:func:`~cluster.editions.load_edition`).
    min_overlap : float, default 0.1
        Link threshold of the matching (fraction).

    Returns
    -------
    RunResult
        A copy with new ids and ``info["previous"]``: the folder, the matching method,
        counts of groups by status and of ids reused.
    """
    differences = check_comparable(previous, edition_from_result(result, "this run"), force=True)
    matching = match_editions(previous, edition_from_result(result, "this run"), min_overlap=min_overlap)
    cont = matching.continuing()
    rename = dict(zip(cont["new_id"], cont["old_id"]))
    taken = set(rename.values())
    mapping = {}
    for cid in result.clusters["cluster_id"].astype(str):
        if cid in rename:
            mapping[cid] = rename[cid]
            continue
        final, k = cid, 1
        while final in taken:
            k += 1
            final = f"{cid}-{k}"
        taken.add(final)
        mapping[cid] = final
    clusters = result.clusters.copy()
    clusters["cluster_id"] = clusters["cluster_id"].astype(str).map(mapping)
    sites = result.sites.copy()
    inside = sites["cluster_id"].notna()
    sites["cluster_id"] = sites["cluster_id"].where(~inside, sites["cluster_id"].map(mapping))
    profiles = result.profiles
    if profiles is not None:
        attrs = dict(profiles.attrs)
        profiles = profiles.assign(cluster_id=profiles["cluster_id"].map(mapping))
        profiles.attrs.update(attrs)
    statuses = matching.clusters[matching.clusters["edition"] == "new"]["status"].value_counts()
    changed = sum(1 for k, v in mapping.items() if k != v and k in rename)
    info = dict(result.info)
    info["previous"] = {"folder": previous.label, "method": matching.method, "min_overlap": min_overlap,
                        "clusters_by_status": {s: int(n) for s, n in statuses.items()},
                        "ids_reused": len(rename), "ids_not_geohash": changed,
                        "differences": differences}
    if differences:
        info["warnings"] = list(info.get("warnings", [])) + [
            f"--previous {previous.label}: {d}; ids were matched anyway" for d in differences]
    log.info("previous edition %s: %d of %d clusters continue it and keep its ids (%d ids differ from "
             "their geohash)", previous.label, len(rename), len(clusters), changed)
    return dataclasses.replace(result, clusters=clusters, sites=sites, profiles=profiles, info=info)

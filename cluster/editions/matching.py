"""Match the clusters of two editions by overlap, and classify what became of each.

Cluster ids are geohashes of a cluster's heaviest site, so they change whenever that
site moves (Dallas ``g9vg5ze4`` -> ``g9vg4mqf`` between PatentsView 2000 and 2013); the
place is what persists. Two clusters are therefore matched by how much of each lies in
the other.

**The rule.** For an old cluster ``o`` and a new cluster ``n`` whose polygons intersect:

* ``old_in_new`` = the share of ``o``'s activity at sites inside ``n``'s polygon, and
  ``new_in_old`` = the share of ``n``'s activity at sites inside ``o``'s polygon, where a
  site's activity is its contribution to the score (``100 * score_weight * weight /
  world total``, each edition with its own totals, so the metrics add up as in the
  score). Sites are the ``sites`` layer of each edition (the sites counted in a cluster);
  when an edition has none, the shares are of polygon areas instead (equal-area
  projection EPSG:6933) and the result says ``method = "areas"``.
* ``o`` and ``n`` are **linked** when both shares are at least ``min_overlap`` (default
  0.1: each holds a real part of the other), or when either share is at least
  ``min_contained`` (default 0.5), whichever side is bigger: most of the smaller cluster
  lies in the bigger one. A small new cluster inside a large old one is therefore a
  piece split off it (San Francisco 2013, 95 % of it inside the 2000 "San Jose–San
  Francisco", of whose activity it holds a few percent), and a small old cluster inside
  a large new one merged into it, even when the large one continues as another cluster.
* ``iou``, the intersection over union of the two polygons (areas in EPSG:6933), is
  reported with every pair, linked or not.

**Classes.** The links form groups (connected components of old and new clusters); the
group's class (``group_status``) is ``continuing`` for one old and one new cluster,
``new`` for a new cluster alone, ``gone`` for an old one alone, ``split`` for one old and
several new, ``merged`` for several old and one new, ``regrouped`` for several of both.

Each linked pair then gets its own status from the main links. An old cluster's **main
successor** is the linked new cluster holding the largest share of its activity
(``old_in_new``); a new cluster's **main predecessor** the linked old cluster holding the
largest share of the new one's (``new_in_old``). Ties are decided by the better rank
(the smaller rank number: of the new cluster for a successor, of the old one for a
predecessor), then by the smaller cluster id. A pair is

* ``continuing`` when each is the other's main link and, if the old cluster has several
  successors, the pair holds at least ``min_contained`` of the old cluster's activity
  (and likewise of the new one's if it has several predecessors): Tokyo 2000 -> Tokyo
  2013 with 80 % of its activity while Yokohama split off;
* ``split`` when the old cluster is the new one's main predecessor but the old cluster
  continues as another (or as none: split in pieces none of which holds
  ``min_contained``): the new cluster split off it;
* ``merged`` when the new cluster is the old one's main successor but the new cluster
  continues another: the old cluster merged into it (or pieces of which none holds
  ``min_contained`` merged);
* ``regrouped`` for a minor link both ways (neither is the other's main link).

A cluster's ``status`` is ``continuing`` if it is in a continuing pair, else the status
of its main link (``split`` or ``merged``), ``new`` or ``gone`` without a link. A
continuing pair is what ``--previous`` gives the old id to.

Everything is deterministic: groups are numbered by their best new rank, then their
best old rank.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

from cluster.editions._edition import Edition

#: Default minimum share of each cluster's activity inside the other for a link.
MIN_OVERLAP = 0.1
#: Default minimum share of the smaller cluster inside the bigger for a link (and of a
#: cluster with several links held by the pair that continues it).
MIN_CONTAINED = 0.5
STATUSES = ("continuing", "new", "gone", "split", "merged", "regrouped")
_EQUAL_AREA = "EPSG:6933"


@dataclass(frozen=True)
class Matching:
    """The result of :func:`match_editions`.

    Attributes
    ----------
    pairs : DataFrame
        Every pair of clusters whose polygons intersect: ``old_id``, ``new_id``,
        ``old_in_new``, ``new_in_old`` (fractions), ``iou``, ``linked``, ``status`` (of a
        linked pair: ``continuing``, ``split``, ``merged`` or ``regrouped``; None when not
        linked) and ``group_status`` (the class of the pair's group).
    clusters : DataFrame
        One row per cluster of either edition: ``edition`` (``old``/``new``),
        ``cluster_id``, ``group`` (1, 2, ...), ``status`` (``continuing`` for both ends of
        a continuing pair, else the status of the cluster's main link, ``split`` or
        ``merged``; ``new`` or ``gone`` without a link) and ``group_status``.
    method : str
        ``sites`` (shares of site activity) or ``areas`` (shares of polygon area).
    min_overlap : float
        The threshold used.
    """

    pairs: pd.DataFrame
    clusters: pd.DataFrame
    method: str
    min_overlap: float

    def status_of(self, edition: str) -> pd.Series:
        """``cluster_id -> status`` of one edition (``old`` or ``new``)."""
        c = self.clusters[self.clusters["edition"] == edition]
        return pd.Series(c["status"].to_numpy(), index=c["cluster_id"].to_numpy())

    def continuing(self) -> pd.DataFrame:
        """The continuing pairs: ``old_id``, ``new_id`` (each id at most once)."""
        return self.pairs[self.pairs["status"] == "continuing"][["old_id", "new_id"]]


def _site_shares(sites_of: Edition, polygons_of: Edition, pairs: np.ndarray, first: bool) -> np.ndarray:
    """For each candidate pair, the share of one edition's cluster activity at its sites
    inside the other edition's polygon (``first``: the pair's first index is ``sites_of``)."""
    sites = sites_of.sites
    act = sites_of.site_activity()
    ids = sites_of.clusters["cluster_id"].tolist()
    index = {cid: i for i, cid in enumerate(ids)}
    owner = sites["cluster_id"].map(index).fillna(-1).to_numpy(dtype=np.int64)
    ok = owner >= 0
    total = np.bincount(owner[ok], weights=act[ok], minlength=len(ids))
    points = shapely.points(sites["lon"].to_numpy()[ok], sites["lat"].to_numpy()[ok])
    tree = shapely.STRtree(np.asarray(polygons_of.clusters.geometry.values))
    pt, poly = tree.query(points, predicate="intersects")
    own = owner[ok][pt]
    key = pd.DataFrame({"c": own, "p": poly, "a": act[ok][pt]}).groupby(["c", "p"])["a"].sum()
    a, b = (pairs[0], pairs[1]) if first else (pairs[1], pairs[0])
    got = key.reindex(pd.MultiIndex.from_arrays([a, b])).fillna(0.0).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total[a] > 0, got / total[a], 0.0)


def _links(old_in_new: np.ndarray, new_in_old: np.ndarray, min_overlap: float, min_contained: float) -> np.ndarray:
    """Linked pairs: each holds ``min_overlap`` of the other, or either holds
    ``min_contained`` of the other (most of the smaller lies in the bigger)."""
    two = (old_in_new >= min_overlap) & (new_in_old >= min_overlap)
    return two | (np.maximum(old_in_new, new_in_old) >= min_contained)


def _main_links(pairs: np.ndarray, linked: np.ndarray, share: np.ndarray, other_rank: np.ndarray,
                other_id: np.ndarray, side: int) -> np.ndarray:
    """For each linked pair, whether it is the main link of its cluster on ``side`` (0 old,
    1 new): the largest ``share``, ties by the other cluster's better rank, then smaller id."""
    idx = np.flatnonzero(linked)
    order = np.lexsort((other_id[idx], other_rank[idx], -share[idx], pairs[side][idx]))
    ordered = idx[order]
    first = np.ones(len(ordered), dtype=bool)
    first[1:] = pairs[side][ordered][1:] != pairs[side][ordered][:-1]
    main = np.zeros(len(linked), dtype=bool)
    main[ordered[first]] = True
    return main


def match_editions(old: Edition, new: Edition, *, min_overlap: float = MIN_OVERLAP,
                   min_contained: float = MIN_CONTAINED) -> Matching:
    """Match the clusters of ``old`` and ``new`` by overlap and classify every group.

    Parameters
    ----------
    old, new : Edition
        The earlier and the later edition.
    min_overlap : float, default 0.1
        Minimum share (fraction) of each cluster's activity inside the other's polygon
        for the two to be linked (see the module documentation).
    min_contained : float, default 0.5
        Between clusters without such a link: minimum share of one inside the other for
        a one-sided link (a cluster that grew or shrank around the same place).

    Returns
    -------
    Matching
    """
    og = np.asarray(old.clusters.geometry.values)
    ng = np.asarray(new.clusters.geometry.values)
    o_ids = old.clusters["cluster_id"].astype(str).to_numpy()
    n_ids = new.clusters["cluster_id"].astype(str).to_numpy()
    if len(og) and len(ng):
        pairs = shapely.STRtree(ng).query(og, predicate="intersects")
    else:
        pairs = np.zeros((2, 0), dtype=np.int64)
    order = np.lexsort((pairs[1], pairs[0]))
    pairs = pairs[:, order]
    o_eq = np.asarray(old.clusters.geometry.to_crs(_EQUAL_AREA).values)
    n_eq = np.asarray(new.clusters.geometry.to_crs(_EQUAL_AREA).values)
    inter = shapely.area(shapely.intersection(o_eq[pairs[0]], n_eq[pairs[1]])) if pairs.shape[1] else np.zeros(0)
    ao, an = shapely.area(o_eq)[pairs[0]], shapely.area(n_eq)[pairs[1]]
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(ao + an - inter > 0, inter / (ao + an - inter), 0.0)
    if old.sites is not None and new.sites is not None:
        method = "sites"
        old_in_new = _site_shares(old, new, pairs, first=True)
        new_in_old = _site_shares(new, old, pairs, first=False)
    else:
        method = "areas"
        with np.errstate(divide="ignore", invalid="ignore"):
            old_in_new = np.where(ao > 0, inter / ao, 0.0)
            new_in_old = np.where(an > 0, inter / an, 0.0)
    linked = _links(old_in_new, new_in_old, min_overlap, min_contained)
    pair_table = pd.DataFrame({"old_id": o_ids[pairs[0]], "new_id": n_ids[pairs[1]],
                               "old_in_new": old_in_new, "new_in_old": new_in_old, "iou": iou, "linked": linked})

    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n_old, n_new = len(o_ids), len(n_ids)
    lo, ln = pairs[0][linked], pairs[1][linked] + n_old
    graph = coo_matrix((np.ones(len(lo)), (lo, ln)), shape=(n_old + n_new,) * 2)
    _, comp = connected_components(graph, directed=False)
    old_rank = old.clusters["rank"].to_numpy(dtype=float)
    new_rank = new.clusters["rank"].to_numpy(dtype=float)
    nodes = pd.DataFrame({"comp": comp, "edition": ["old"] * n_old + ["new"] * n_new,
                          "cluster_id": np.concatenate([o_ids, n_ids]),
                          "new_rank": np.concatenate([np.full(n_old, np.inf), new_rank]),
                          "old_rank": np.concatenate([old_rank, np.full(n_new, np.inf)])})
    g = nodes.groupby("comp").agg(best_new=("new_rank", "min"), best_old=("old_rank", "min"),
                                  n_new=("edition", lambda e: int((e == "new").sum())),
                                  n_old=("edition", lambda e: int((e == "old").sum())))
    g = g.sort_values(["best_new", "best_old"], kind="mergesort")
    g["group"] = np.arange(1, len(g) + 1)
    g["status"] = [_status(o, n) for o, n in zip(g["n_old"], g["n_new"])]
    nodes = nodes.join(g[["group", "status"]], on="comp")
    group_status = g["status"].reindex(comp[pairs[0]]).to_numpy()
    pair_table["group_status"] = np.where(linked, group_status, None).astype(object)
    # Pair status from the main links (see the module documentation).
    main_succ = _main_links(pairs, linked, old_in_new, new_rank[pairs[1]], n_ids[pairs[1]], side=0)
    main_pred = _main_links(pairs, linked, new_in_old, old_rank[pairs[0]], o_ids[pairs[0]], side=1)
    n_succ = np.bincount(pairs[0][linked], minlength=n_old)[pairs[0]]
    n_pred = np.bincount(pairs[1][linked], minlength=n_new)[pairs[1]]
    mutual = main_succ & main_pred
    holds = (((n_succ == 1) | (old_in_new >= min_contained))
             & ((n_pred == 1) | (new_in_old >= min_contained)))
    pair_status = np.full(len(linked), None, dtype=object)
    pair_status[linked & main_pred] = "split"
    pair_status[linked & main_succ & ~main_pred] = "merged"
    # A main link both ways that holds too little: pieces of which none continues.
    pair_status[linked & mutual & (n_succ == 1)] = "merged"
    pair_status[linked & mutual & ~holds & (n_succ > 1)] = "split"
    pair_status[linked & ~main_succ & ~main_pred] = "regrouped"
    pair_status[linked & mutual & holds] = "continuing"
    pair_table["status"] = pair_status
    # A cluster's status: that of its main link (continuing, split or merged), else new/gone.
    main_status = {}
    for i in np.flatnonzero(linked & main_succ):
        main_status[("old", o_ids[pairs[0][i]])] = pair_status[i]
    for i in np.flatnonzero(linked & main_pred):
        main_status[("new", n_ids[pairs[1][i]])] = pair_status[i]
    alone = {"old": "gone", "new": "new"}
    nodes["group_status"] = nodes["status"]
    nodes["status"] = [main_status.get((e, c), alone[e]) for e, c in zip(nodes["edition"], nodes["cluster_id"])]
    clusters = nodes[["edition", "cluster_id", "group", "status", "group_status"]].reset_index(drop=True)
    return Matching(pairs=pair_table, clusters=clusters, method=method, min_overlap=float(min_overlap))


def _status(n_old: int, n_new: int) -> str:
    if n_old == 1 and n_new == 1:
        return "continuing"
    if n_old == 0:
        return "new"
    if n_new == 0:
        return "gone"
    if n_old == 1:
        return "split"
    if n_new == 1:
        return "merged"
    return "regrouped"

import numpy as np
import pandas as pd
import pytest

from cluster.errors import UserInputError
from cluster.stages.read import validate_frame
from cluster.stages.sites import (
    combine_document_sizes,
    combine_partials,
    document_sizes,
    filter_years,
    finalize_sites,
    partial_sites,
    reduce_to_sites,
    world_totals,
)

METRICS = ("patents", "publications", "vc")


def _records(rows):
    return validate_frame(pd.DataFrame(rows), "<test>", METRICS)


def test_fractional_counting_gives_each_document_one():
    rec = _records([
        {"metric": "patents", "doc_id": "A", "lat": 1, "lon": 1},
        {"metric": "patents", "doc_id": "A", "lat": 2, "lon": 2},
        {"metric": "patents", "doc_id": "A", "lat": 2, "lon": 2},
        {"metric": "patents", "doc_id": "B", "lat": 1, "lon": 1},
        # same doc_id in another metric is another document
        {"metric": "publications", "doc_id": "A", "lat": 1, "lon": 1},
    ])
    sites = reduce_to_sites(rec, METRICS)
    got = {(m, la): w for m, la, w in zip(sites["metric"].astype(str), sites["lat"], sites["weight"])}
    assert got[("patents", 1.0)] == pytest.approx(1 / 3 + 1)
    assert got[("patents", 2.0)] == pytest.approx(2 / 3)
    assert got[("publications", 1.0)] == pytest.approx(1.0)
    assert world_totals(sites, METRICS) == pytest.approx({"patents": 2.0, "publications": 1.0, "vc": 0.0})


def test_preweighted_sites_keep_their_weight_and_dominant_country():
    rec = _records([
        {"metric": "vc", "weight": 2.0, "lat": 1, "lon": 1, "country": "SG"},
        {"metric": "vc", "weight": 3.0, "lat": 1, "lon": 1, "country": "MY"},
    ])
    sites = reduce_to_sites(rec, METRICS)
    assert len(sites) == 1 and sites["weight"][0] == 5.0 and sites["country"][0] == "MY"
    assert sites["n_records"][0] == 2


def test_year_window():
    rec = _records([{"metric": "vc", "weight": 1, "lat": 1, "lon": 1, "year": y} for y in (2017, 2019, 2023)])
    kept, dropped = filter_years(rec, 2018, 2022)
    assert kept["year"].tolist() == [2019] and dropped == 2
    with pytest.raises(UserInputError, match="selects no records .years in the input: 2017–2023"):
        filter_years(rec, 2030, 2031)


def test_partitioned_reduction_equals_whole_and_is_order_free():
    rng = np.random.default_rng(3)
    n = 3000
    rows = pd.DataFrame({
        "metric": rng.choice(METRICS, n), "doc_id": rng.integers(0, 700, n).astype(str),
        "lat": rng.integers(0, 40, n) / 10, "lon": rng.integers(0, 40, n) / 10,
        "country": rng.choice(["DE", "FR"], n),
    })
    rec = _records(rows)
    whole = reduce_to_sites(rec, METRICS)
    parts = np.array_split(np.arange(n), 4)
    sizes = combine_document_sizes(document_sizes(rec.iloc[p]) for p in parts)
    partitioned = finalize_sites(combine_partials(partial_sites(rec.iloc[p], sizes) for p in parts), METRICS)
    pd.testing.assert_frame_equal(whole[["metric", "lat", "lon", "n_records", "country"]],
                                  partitioned[["metric", "lat", "lon", "n_records", "country"]])
    np.testing.assert_allclose(whole["weight"], partitioned["weight"], rtol=1e-12)
    shuffled = reduce_to_sites(_records(rows.sample(frac=1, random_state=1)), METRICS)
    # Bit-identical, not merely close: rankings must not change with row order.
    assert whole["weight"].to_numpy().tobytes() == shuffled["weight"].to_numpy().tobytes()
    assert rec.equals(_records(rows))  # the stage leaves its input unchanged

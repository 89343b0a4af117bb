import numpy as np
import pandas as pd
import pytest

from cluster.config import load_config
from cluster.errors import UserInputError
from cluster.ingest.engine import open_records
from cluster.ingest.read import validate_frame
from cluster.stages.sites import document_sizes, fractional_weights, prepare_sites, reduce_to_sites, world_totals

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
    prepared = prepare_sites(rec, load_config(overrides={"year_start": 2018, "year_end": 2022}))
    assert prepared.sites["n_records"].tolist() == [1] and prepared.records_outside_years == 2
    assert prepared.n_records == 3 and "outside the year window" in prepared.warnings[0]
    with pytest.raises(UserInputError, match="selects no records .years in the input: 2017–2023"):
        prepare_sites(rec, load_config(overrides={"year_start": 2030, "year_end": 2031}))


def test_documents_counted_inside_the_year_window_only():
    # Document A has a row in 2015 (outside) and two in 2020: each kept row gets 1/2.
    rec = _records([{"metric": "patents", "doc_id": "A", "lat": la, "lon": 0, "year": y}
                    for la, y in ((1, 2015), (2, 2020), (3, 2020))])
    sites = prepare_sites(rec, load_config(overrides={"year_start": 2018})).sites
    assert sites["lat"].tolist() == [2.0, 3.0] and sites["weight"].tolist() == [0.5, 0.5]


def test_whole_documents_sum_exactly_to_their_count():
    # 500 documents of 10 rows each, all at one site: float addition of 5,000 tenths
    # misses 500 (0.1 is not a binary fraction); counting rows per document size does not.
    rows = pd.DataFrame({"metric": "patents", "doc_id": np.repeat(np.arange(500), 10).astype(str),
                         "lat": 48.1, "lon": 11.5})
    assert sum([0.1] * 5000) != 500.0
    sites = reduce_to_sites(_records(rows), METRICS)
    assert sites["weight"].tolist() == [500.0]


def _random_rows(n=3000, seed=3):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "metric": rng.choice(METRICS, n), "doc_id": rng.integers(0, 700, n).astype(str),
        "lat": rng.integers(0, 40, n) / 10, "lon": rng.integers(0, 40, n) / 10,
        "country": rng.choice(["DE", "FR"], n),
        "weight": np.where(rng.random(n) < 0.2, rng.random(n) * 3 + 0.1, np.nan),
    })


def test_sites_equal_a_hand_reduction_of_the_records():
    rec = _records(_random_rows())
    sites = reduce_to_sites(rec, METRICS)
    w = fractional_weights(rec, document_sizes(rec))
    by_hand = pd.DataFrame({"metric": rec["metric"].astype(str), "lat": rec["lat"], "lon": rec["lon"], "w": w}
                           ).groupby(["metric", "lat", "lon"])["w"].sum()
    got = sites.assign(metric=sites["metric"].astype(str)).set_index(["metric", "lat", "lon"])["weight"]
    np.testing.assert_allclose(got.reindex(by_hand.index).to_numpy(), by_hand.to_numpy(), rtol=1e-12)
    assert sites["n_records"].sum() == len(rec)


def test_partitioned_files_shuffled_rows_and_memory_give_bit_identical_sites(tmp_path):
    rows = _random_rows()
    whole = reduce_to_sites(_records(rows), METRICS)
    # The same rows shuffled into four hive partitions of Parquet, and as one CSV.
    shuffled = rows.sample(frac=1, random_state=1).reset_index(drop=True)
    for part, idx in enumerate(np.array_split(np.arange(len(rows)), 4)):
        folder = tmp_path / "parts" / f"part={part}"
        folder.mkdir(parents=True)
        shuffled.iloc[idx].to_parquet(folder / "data.parquet", index=False)
    rows.to_csv(tmp_path / "rows.csv", index=False)
    config = load_config()
    for given in (tmp_path / "parts", str(tmp_path / "parts" / "*" / "*.parquet"), tmp_path / "rows.csv"):
        got = prepare_sites(open_records([given], METRICS), config).sites
        pd.testing.assert_frame_equal(whole[["metric", "lat", "lon", "n_records", "country"]],
                                      got[["metric", "lat", "lon", "n_records", "country"]])
        # Bit-identical, not merely close: rankings must not change with row order or layout.
        assert whole["weight"].to_numpy().tobytes() == got["weight"].to_numpy().tobytes()


def test_engine_returns_groups_in_summing_order_and_any_order_gives_the_same_bits():
    from cluster.ingest.engine import in_memory, reduce_records
    from cluster.stages.sites import _is_sorted, positions_in, sites_from_groups

    groups = reduce_records(in_memory(_records(_random_rows())), METRICS).groups
    # DuckDB sorts the groups as sites_from_groups sums them, so no sort is left to numpy.
    n = np.nan_to_num(groups["n"].to_numpy(dtype=float), nan=-1.0)
    own = np.nan_to_num(groups["weight"].to_numpy(dtype=float), nan=-1.0)
    country = pd.factorize(groups["country"], sort=True)[0]
    assert _is_sorted([positions_in(groups["metric"], list(METRICS)), groups["lat"].to_numpy(),
                       groups["lon"].to_numpy(), country, n, own])
    sites = sites_from_groups(groups, METRICS)
    for seed in (1, 2):
        other = sites_from_groups(groups.sample(frac=1, random_state=seed), METRICS)
        pd.testing.assert_frame_equal(sites, other)
        assert sites["weight"].to_numpy().tobytes() == other["weight"].to_numpy().tobytes()


def test_is_sorted_is_lexicographic():
    from cluster.stages.sites import _is_sorted

    assert _is_sorted([np.array([0, 0, 1]), np.array([5.0, 6.0, 0.0])])
    assert not _is_sorted([np.array([0, 0, 1]), np.array([6.0, 5.0, 0.0])])
    assert _is_sorted([np.array([1]), np.array([0.0])]) and _is_sorted([np.zeros(0)])


def test_padded_cells_in_parquet_are_the_same_document_and_country(tmp_path):
    # Cells are trimmed only where they start or end with a space (a cheaper scan): the
    # padded doc_id is still document A (two rows, 1/2 each) and ' de ' is DE.
    pd.DataFrame({"metric": ["patents", " patents"], "doc_id": ["A", " A "], "lat": [1.0, 2.0], "lon": [1.0, 1.0],
                  "country": [" de ", "DE"]}).to_parquet(tmp_path / "r.parquet", index=False)
    sites = prepare_sites(open_records([tmp_path / "r.parquet"], METRICS), load_config()).sites
    assert sites["weight"].tolist() == [0.5, 0.5] and sites["country"].tolist() == ["DE", "DE"]


def test_countries_that_normalise_alike_are_one_site_and_one_country(tmp_path):
    # The engine returns one group per country as read; ' de' and 'DE' at one site are two
    # groups of the same key, added up as counts before any division.
    rows = pd.DataFrame({"metric": ["patents"] * 3, "doc_id": ["A", "B", "C"], "lat": [1.0] * 3, "lon": [2.0] * 3,
                         "country": [" de", "DE", "de "]})
    rows.to_parquet(tmp_path / "r.parquet", index=False)
    sites = prepare_sites(open_records([tmp_path / "r.parquet"], METRICS), load_config()).sites
    assert sites["weight"].tolist() == [3.0] and sites["n_records"].tolist() == [3]
    assert sites["country"].tolist() == ["DE"]


def test_repeated_keys_are_counted_once_as_integers():
    from cluster.stages.sites import sites_from_groups

    base = pd.DataFrame({"metric": ["patents"] * 2, "lat": [1.0] * 2, "lon": [2.0] * 2, "country": ["DE", "FR"],
                         "n": [10.0, 7.0], "weight": [np.nan] * 2, "c": [3, 1]})
    # The same counts split over repeated keys, in another order: DE adds 3/10 once, not
    # 1/10 + 1/10 + 1/10 (0.30000000000000004).
    split = pd.DataFrame({"metric": ["patents"] * 4, "lat": [1.0] * 4, "lon": [2.0] * 4,
                          "country": ["DE", "FR", "DE", "DE"], "n": [10.0, 7.0, 10.0, 10.0],
                          "weight": [np.nan] * 4, "c": [1, 1, 1, 1]})
    a, b = sites_from_groups(base, METRICS), sites_from_groups(split, METRICS)
    pd.testing.assert_frame_equal(a, b)
    assert a["weight"].to_numpy().tobytes() == b["weight"].to_numpy().tobytes()
    assert a["weight"].tolist() == [3 / 10 + 1 / 7]
    assert a["n_records"].tolist() == [4] and a["country"].tolist() == ["DE"]


def test_a_glob_over_hive_folders_reads_them_as_columns(tmp_path):
    # metric=.../year=... folders give the columns the files lack, whether the input is the
    # directory or a glob below it ('data/**/*.parquet', as the help suggests).
    rows = _random_rows()
    for metric, part in rows.groupby("metric"):
        folder = tmp_path / "data" / f"metric={metric}"
        folder.mkdir(parents=True)
        part.drop(columns="metric").to_parquet(folder / "part-0.parquet", index=False)
    config = load_config()
    whole = prepare_sites(open_records([tmp_path / "data"], METRICS), config).sites
    for pattern in ("data/**/*.parquet", "data/*/part-*.parquet"):
        got = prepare_sites(open_records([str(tmp_path / pattern)], METRICS), config).sites
        pd.testing.assert_frame_equal(whole, got)


def test_folded_codes_sort_as_their_columns_even_past_the_int64_radix():
    from cluster.stages.sites import fold_codes

    rng = np.random.default_rng(3)
    keys = [rng.integers(-1, 4, 500), rng.integers(0, 2**40, 500), rng.integers(-1, 3, 500),
            rng.integers(0, 2**30, 500)]  # 2**70 combinations: the fold re-ranks on the way
    keys[1][::7] = keys[1][0]
    keys[3][::7] = keys[3][0]
    folded, span = fold_codes(keys)
    assert folded.min() >= 0 and folded.max() < span
    assert np.array_equal(np.argsort(folded, kind="stable"), np.lexsort(keys[::-1]))
    rows = list(zip(*keys))
    assert all((folded[i] == folded[j]) == (rows[i] == rows[j]) for i in range(50) for j in range(0, 500, 7))


def test_cluster_values_sums_each_key_in_one_order_whatever_the_rows_order():
    from cluster.stages.sites import cluster_values

    rng = np.random.default_rng(5)
    n = 400
    counts = pd.DataFrame({"cluster": rng.integers(0, 3, n),
                           "metric": pd.Categorical(rng.choice(METRICS, n), categories=METRICS),
                           "kind": rng.choice(["field", "institution"], n), "value": rng.choice(list("abcd"), n),
                           "n": rng.integers(1, 9, n).astype(float), "weight": np.nan, "c": rng.integers(1, 5, n)})
    counts.loc[::5, ["n", "weight"]] = [np.nan, 0.3]
    # The engine's counts: one row per key and (n, weight).
    counts = counts.drop_duplicates(["cluster", "metric", "kind", "value", "n", "weight"]).reset_index(drop=True)
    a = cluster_values(counts)
    b = cluster_values(counts.sample(frac=1.0, random_state=1).reset_index(drop=True))
    key = ["cluster", "metric", "kind", "value"]
    a, b = (x.sort_values(key).reset_index(drop=True) for x in (a, b))
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert a["metric"].dtype == a["kind"].dtype == a["value"].dtype
    assert len(a) == len(counts.drop_duplicates(key))

# innovation-clusters: every target installs what it needs into .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install clusters clusters-real compare-real index index-real demo sweep gallery notebooks test test-fast lint fuzz stress bench clean

# What a run needs, and nothing more (the first `make clusters` waits for this only).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	@echo "compiling the clustering engine once (about 15 s; numba caches it for every later run)"
	$(BIN)/python -c "from cluster.engine.dbscan import warm_up; warm_up()"
	touch $(STAMP)

# The test extras on top (pytest, ruff, the optional features: raster, Dask, S3; the notebook runner).
TEST_STAMP := $(VENV)/.installed-test
$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(TEST_STAMP)

install: $(STAMP)

## Clusters, rankings and GIS layers from the synthetic demo world, into out/
clusters: $(STAMP)
	$(BIN)/cluster run --out out

## The same on real public data (PatentsView 2013 + Crunchbase 2013), into out-real/
clusters-real: $(STAMP)
	$(BIN)/cluster run --config data/real/config.toml \
	  --input data/real/patentsview_inventor_sites_2013.csv \
	  --input data/real/crunchbase_us_rounds_2013-10.csv --out out-real

## Two editions of real data: PatentsView 2000 and 2013 as published, compared, into out-compare/
compare-real: $(STAMP)
	$(BIN)/cluster run --config data/real/patentsview.toml \
	  --input data/real/patentsview_inventor_locations_2000.csv --out out-pv2000
	$(BIN)/cluster run --config data/real/patentsview.toml \
	  --input data/real/patentsview_inventor_locations_2013.csv --previous out-pv2000 --out out-pv2013
	$(BIN)/cluster compare out-pv2000 out-pv2013 --out out-compare
## Composite indices (GIHI-like, ECNU-like) on the `make clusters` output, into out-index-gihi/ and out-index-ecnu/
DEMO_TABLES := --table universities=data/demo/universities.csv --table company_hq=data/demo/company_hq.csv \
	  --table airports=data/demo/airports.csv
index: $(STAMP)
	@test -f out/ranking.csv || $(MAKE) clusters
	$(BIN)/cluster index --run out --framework gihi $(DEMO_TABLES) --out out-index-gihi
	$(BIN)/cluster index --run out --framework ecnu $(DEMO_TABLES) --out out-index-ecnu

## The same on the `make clusters-real` output from real inputs only, into out-real-index-gihi/ and
## out-real-index-ecnu/: the demo tables are synthetic, so their (optional) indicators are left out
## (`cluster index` refuses them with a real run unless --allow-synthetic)
index-real: $(STAMP)
	@test -f out-real/ranking.csv || $(MAKE) clusters-real
	$(BIN)/cluster index --run out-real --framework gihi --out out-real-index-gihi
	$(BIN)/cluster index --run out-real --framework ecnu --out out-real-index-ecnu

## Threshold sweep on the demo world (sweep.csv and heat maps), into out-sweep/
sweep: $(STAMP)
	$(BIN)/cluster sweep --eps-km 5,7.5,10,15,20 --min-weight-scale 0.5,1,2,4 --out out-sweep

## The README's gallery (docs/gallery/): the demo and real maps, the sweep, the comparison, the index
gallery: $(STAMP)
	$(MAKE) clusters clusters-real sweep compare-real index
	$(BIN)/python scripts/gallery.py

## The notebooks executed in place, committed with their outputs (needs the test extras)
notebooks: $(TEST_STAMP)
	$(BIN)/python scripts/run_notebooks.py

## The demo world as a Parquet file
demo: $(STAMP)
	$(BIN)/cluster demo --out out-demo.parquet

## Every test (what CI runs), the lint included
test: $(TEST_STAMP)
	$(BIN)/python -m pytest -q

## The edit loop: every test but the slow ones (subprocess, browser, notebook)
test-fast: $(TEST_STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

## A long fuzzing run of the readers (FUZZ_EXAMPLES per input format; make test runs 10)
FUZZ_EXAMPLES ?= 500
fuzz: $(TEST_STAMP)
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q -s tests/test_fuzz.py

## 50 runs (demo and PatentsView 2013) two at a time under a busy loop on every core; fails on any
## run that does not end within STRESS_TIMEOUT seconds or exits other than 0
STRESS_RUNS ?= 50
STRESS_TIMEOUT ?= 300
stress: $(STAMP)
	$(BIN)/python scripts/stress.py --runs $(STRESS_RUNS) --timeout $(STRESS_TIMEOUT)

## ruff (pyflakes, pycodestyle, import order, bugbear, pyupgrade); also checked by `make test`
lint: $(TEST_STAMP)
	$(BIN)/ruff check cluster tests benchmarks scripts

## DBSCAN engine against scikit-learn, then the whole pipeline (this checkout, the project before
## issue 11, the naive geopandas + scikit-learn pipeline) at BENCH_SIZES records (results in
## benchmarks/results/; generated records in benchmarks/data/, reused). 100 M: BENCH_SIZES=1M,10M,100M.
## Then the reduction alone in DuckDB, Polars and Arrow on the 10 M records (why DuckDB).
BENCH_SIZES ?= 1M,10M
bench: $(TEST_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/bench_dbscan.py
	$(BIN)/python benchmarks/bench_pipeline.py --sizes $(BENCH_SIZES)
	$(BIN)/python benchmarks/bench_engines.py --records benchmarks/data/records-10M-s20240611

## Everything the targets above write (each --out, the benchmark records), and the tools' caches
## (tests/test_makefile.py checks that every --out of this file is listed here)
clean:
	rm -rf out out-real out-sweep out-pv2000 out-pv2013 out-compare out-index-gihi out-index-ecnu \
	  out-real-index-gihi out-real-index-ecnu out-demo.parquet benchmarks/data \
	  .pytest_cache .hypothesis .ruff_cache

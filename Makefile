# innovation-clusters: every target installs what it needs into .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install clusters clusters-real index index-real demo sweep test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## Clusters, rankings and GIS layers from the synthetic demo world, into out/
clusters: $(STAMP)
	$(BIN)/cluster run --out out

## The same on real public data (PatentsView 2013 + Crunchbase 2013), into out-real/
clusters-real: $(STAMP)
	$(BIN)/cluster run --config data/real/config.toml \
	  --input data/real/patentsview_inventor_sites_2013.csv \
	  --input data/real/crunchbase_us_rounds_2013-10.csv --out out-real

## Composite indices (GIHI-like, ECNU-like) on the `make clusters` output, into out-index-gihi/ and out-index-ecnu/
DEMO_TABLES := --table universities=data/demo/universities.csv --table company_hq=data/demo/company_hq.csv \
	  --table airports=data/demo/airports.csv
index: $(STAMP)
	@test -f out/ranking.csv || $(MAKE) clusters
	$(BIN)/cluster index --run out --framework gihi $(DEMO_TABLES) --out out-index-gihi
	$(BIN)/cluster index --run out --framework ecnu $(DEMO_TABLES) --out out-index-ecnu

## The same on the `make clusters-real` output, into out-real-index-gihi/ and out-real-index-ecnu/
index-real: $(STAMP)
	@test -f out-real/ranking.csv || $(MAKE) clusters-real
	$(BIN)/cluster index --run out-real --framework gihi $(DEMO_TABLES) --out out-real-index-gihi
	$(BIN)/cluster index --run out-real --framework ecnu $(DEMO_TABLES) --out out-real-index-ecnu

## Threshold sweep on the demo world (sweep.csv and heat maps), into out-sweep/
sweep: $(STAMP)
	$(BIN)/cluster sweep --eps-km 5,7.5,10,15,20 --min-weight-scale 0.5,1,2,4 --out out-sweep

## The demo world as a Parquet file
demo: $(STAMP)
	$(BIN)/cluster demo --out out-demo.parquet

test: $(STAMP)
	$(BIN)/python -m pytest -q

## DBSCAN engine against scikit-learn (results in benchmarks/results/)
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_dbscan.py

clean:
	rm -rf out out-real out-sweep out-index-* out-real-index-* out-demo.parquet .pytest_cache

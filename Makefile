# arxiv-forge: the everyday commands. `make demo` and `make test` set everything up first.
.PHONY: setup demo test bench bench-models dev lint clean

VENV := .venv/bin
export DAGSTER_HOME ?= $(CURDIR)/var/dagster_home

setup:
	@bash scripts/setup.sh

demo: setup
	@$(VENV)/arxiv-forge demo

test:
	@bash scripts/setup.sh --test
	@$(VENV)/pytest -q

# The quick benchmarks (minutes); bench-models runs the long ones (PTB about an hour, digits half an hour).
QUICK_BENCH := chunk_read oai_parse extract_latex raster extract sample_bucket lstm_throughput gan_throughput
bench: setup
	@for b in $(QUICK_BENCH); do echo "== bench/$$b.py"; $(VENV)/python bench/$$b.py || exit 1; done

bench-models: setup
	@$(VENV)/python bench/ptb.py --threads 1
	@$(VENV)/python bench/digits.py

dev: setup
	@mkdir -p $(DAGSTER_HOME)
	@$(VENV)/dg dev -w workspace.yaml

lint: setup
	@$(VENV)/ruff check forge_common pipeline models assets tests bench

clean:
	rm -rf var .pytest_cache

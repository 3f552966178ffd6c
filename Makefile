# arxiv-forge: the everyday commands. `make demo` and `make test` set everything up first.
.PHONY: setup demo test bench dev lint clean

VENV := .venv/bin
export DAGSTER_HOME ?= $(CURDIR)/var/dagster_home

setup:
	@bash scripts/setup.sh

demo: setup
	@$(VENV)/arxiv-forge demo

test:
	@bash scripts/setup.sh --test
	@$(VENV)/pytest -q

bench: setup
	@for b in bench/*.py; do echo "== $$b"; $(VENV)/python $$b || exit 1; done

dev: setup
	@mkdir -p $(DAGSTER_HOME)
	@$(VENV)/dg dev -w workspace.yaml

lint: setup
	@$(VENV)/ruff check pipeline models assets tests bench

clean:
	rm -rf var .pytest_cache

# The two Quick start commands (README): `make demo` and `make test`. Both set everything up first.
VENV_BIN := $(CURDIR)/.venv/bin
export PATH := $(VENV_BIN):$(PATH)

.PHONY: setup demo test lint bench

setup:
	bash scripts/bootstrap.sh

demo: setup
	dvc repro

test: setup
	python -m pytest

lint: setup
	ruff check .

# Every benchmark in bench/ once, side by side; rewrites the results section of bench/README.md.
bench: setup
	python -m bench.run_all

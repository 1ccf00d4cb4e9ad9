# The two Quick start commands (README): `make demo` and `make test`. Both set everything up first.
VENV_BIN := $(CURDIR)/.venv/bin
export PATH := $(VENV_BIN):$(PATH)

.PHONY: setup demo test lint

setup:
	bash scripts/bootstrap.sh

demo: setup
	dvc repro

test: setup
	python -m pytest

lint: setup
	ruff check .

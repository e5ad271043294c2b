# asd-notebooks: the two set-up commands are `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.installed
SIZE   ?= default
DATA   ?= data/synth/$(SIZE)
MACHINES ?= fan
PARTS  ?= dev,additional,eval

.PHONY: run test lab data download notebooks book lint bench clean-venv help

help:
	@echo "make run       create .venv, generate the default dataset, run the notebook series into build/"
	@echo "make test      create .venv (with test extras) and run the whole test suite"
	@echo "make lab       JupyterLab on notebooks/"
	@echo "make data      generate the procedural dataset (SIZE=smoke|default|full) into data/synth/SIZE"
	@echo "make download  download real DCASE2020 data (MACHINES=fan,valve PARTS=dev,additional,eval)"
	@echo "make book      the course website of the executed notebooks (after make run) in build/book/"

# The virtual environment is (re)built when pyproject.toml changes; pip takes torch from the local cache if any.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --progress-bar off -e ".[test]"
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

data: $(STAMP)
	$(PY) -m asdlib synth --size $(SIZE) --out $(DATA)

download: $(STAMP)
	$(PY) -m asdlib download --machines $(MACHINES) --parts $(PARTS) --out data/dcase2020

run: data
	$(PY) -m asdlib run-series --data $(DATA) --build build

notebooks: $(STAMP)
	ASD_SMOKE=1 $(PY) -m asdlib run-series --data data/synth/smoke --build build/smoke --size smoke

# The course website from the notebooks that make run executed (BOOK_FROM=build/smoke: after make notebooks).
BOOK_FROM ?= build
book: $(STAMP)
	$(PY) notebooks/_site/build_book.py --executed $(BOOK_FROM) --out build/book

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

lint: $(STAMP)
	$(BIN)/ruff check asdlib tests bench

bench: $(STAMP)
	$(PY) bench/synth_speed.py

clean-venv:
	rm -rf $(VENV)

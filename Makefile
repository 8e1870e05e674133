# Two commands: `make run` (the main job on config.yaml) and `make test`.
# Both create .venv if missing and install the pinned dependencies and the package.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CORES ?= all
CONFIG ?= config.yaml

.PHONY: run test install lint bench clean

$(PY):
	python3 -m venv $(VENV)

$(STAMP): requirements.txt pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

# the config is checked by our own reader first: Snakemake parses --configfile before the
# Snakefile runs, and its message for invalid YAML names neither the file nor the line. What is
# checked is what Snakemake runs: CONFIG laid over config.yaml (the Snakefile's configfile:)
run: $(STAMP)
	$(VENV)/bin/cnninterp validate-config config.yaml $(CONFIG)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/snakemake --cores $(CORES) --configfile $(CONFIG)

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/snakemake --lint
	$(VENV)/bin/snakefmt --check .

bench: $(STAMP)
	$(PY) benchmarks/shards.py
	$(PY) benchmarks/dissect.py

clean:
	rm -rf results .snakemake

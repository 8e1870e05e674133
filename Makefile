# Two commands: `make run` (the main job on config.yaml) and `make test`.
# Both create .venv if missing and install the pinned dependencies and the package.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CORES ?= all

.PHONY: run test install lint bench clean

$(PY):
	python3 -m venv $(VENV)

$(STAMP): requirements.txt pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/snakemake --cores $(CORES) --configfile config.yaml

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

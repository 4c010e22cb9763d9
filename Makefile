# Two commands do everything (see README.md):
#   make reproduce   set up, then reproduce the paper (snakemake --cores $(CORES), config/config.yaml)
#   make test        set up, then lint and run the whole test suite
# and `make demo` runs the whole chain offline on real handwriting in a few minutes.

# mobopt supports Python 3.11-3.13 (requires-python in pyproject.toml: TensorFlow has no 3.14 wheels).
# PYTHON defaults to the first of python3.11, python3.12, python3.13 on PATH that runs (a pyenv shim
# can be on PATH without its version being active); pass PYTHON=/path/to/python to choose.
PY_SUPPORTED := import sys; sys.exit(not (3, 11) <= sys.version_info[:2] < (3, 14))
PYTHON ?= $(firstword $(foreach p,python3.11 python3.12 python3.13,$(shell $(p) -c '$(PY_SUPPORTED)' >/dev/null 2>&1 && echo $(p))))
VENV   ?= .venv
CORES  ?= 8
BIN    := $(VENV)/bin
SNAKEMAKE := $(BIN)/python -m snakemake

.PHONY: setup reproduce demo report test test-slurm lint measure clean

# Re-install when the pins change; the stamp makes `make test` cheap on a set-up machine.
# constraints.txt pins every indirect dependency too (see its header).
$(VENV)/.installed: pyproject.toml constraints.txt
	@test -x $(BIN)/python || { test -n "$(PYTHON)" && $(PYTHON) -c '$(PY_SUPPORTED)' 2>/dev/null; } || { \
	  echo "mobopt needs Python 3.11-3.13; found $(if $(PYTHON),$(PYTHON): $$($(PYTHON) --version 2>&1 | head -1),$$(command -v python3 >/dev/null && python3 --version 2>&1 | head -1 || echo "no python3 on PATH")); install one or pass PYTHON=/path/to/python3.1x" >&2; \
	  exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $@

setup: $(VENV)/.installed

reproduce: setup
	$(SNAKEMAKE) --cores $(CORES) $(if $(CONFIG),--configfile $(CONFIG))

demo: setup
	$(BIN)/mobopt digits-idx data/demo/digits-idx
	$(SNAKEMAKE) --cores 2 --configfile config/demo.yaml

report: setup
	$(SNAKEMAKE) --cores 1 $(if $(CONFIG),--configfile $(CONFIG)) --report reports/report.html

# ruff; the stage layers (import-linter contracts in pyproject.toml); snakefmt as the Snakemake
# catalog checks it; Snakemake's own linter.
lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports --no-cache
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(SNAKEMAKE) --lint

test: lint
	$(BIN)/python -m pytest -v --timeout 1800 tests

# A real one-node SLURM cluster on this machine (needs root and apt: Debian's slurm, munge,
# slurmdbd, mariadb), the demo through `snakemake --executor slurm`, then every daemon stopped.
$(VENV)/.installed-slurm: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[slurm]"
	touch $@

test-slurm: $(VENV)/.installed-slurm
	PYTHON=$(abspath $(BIN))/python tests/slurm/run.sh

measure: setup
	$(BIN)/python benchmarks/workflow_time.py
	$(BIN)/python benchmarks/train_throughput.py --modes base,xla,bf16,xla+bf16,tensors
	$(BIN)/python benchmarks/bench_protocol.py
	$(BIN)/python benchmarks/prepare_throughput.py --images 10000 87000
	$(BIN)/python benchmarks/mobilenet_train_throughput.py
	$(BIN)/python benchmarks/graph_opt_targets.py

clean:
	rm -rf results reports logs .snakemake data/demo

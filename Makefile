# The README's two set-up commands: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: demo test install bench clean refit-serving serving-error-summary precompute

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[dev]'
	$(PY) -m compileall -q planner  # as pip does for a wheel: the first command compiles nothing
	touch $@

install: $(VENV)/.installed

# torch is only for calibrate/validate: pyproject.toml's `calibrate` extra, the one home of
# its pin (the exact CPU wheel; a range would pull CUDA).
$(VENV)/.torch: $(VENV)/.installed
	$(PIP) install -q -e '.[dev,calibrate]'
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/planner recommend

test: $(VENV)/.torch
	$(PY) -m pytest

# Maintainers: refit the shipped serving profiles on the dev measurements. The command
# itself never writes into calibration/ (nothing the package ships is overwritten by a
# command); this target fits into build/ and copies the profiles over deliberately.
refit-serving: $(VENV)/.installed
	rm -rf build/serving-refit
	$(VENV)/bin/planner calibrate --from-measured ../shared/data/serving-measured-hopper-dev.csv \
		--physical-bounds -o build/serving-refit/
	cp build/serving-refit/*.yaml calibration/serving/

# Maintainers, after refit-serving: the measured error of each prediction path that every
# command prints (calibration/serving-fidelity.yaml, planner.fidelity), from one full
# benchmarks/serving_fidelity.py run; its printout (build/serving-fidelity.txt) is the
# README's "Error today" block, which tests/test_fidelity.py holds equal to the file.
serving-error-summary: $(VENV)/.installed
	mkdir -p build
	$(PY) benchmarks/serving_fidelity.py --carry-rules \
		--write-error-summary build/serving-fidelity.yaml > build/serving-fidelity.txt
	cp build/serving-fidelity.yaml calibration/

# Maintainers: rebuild the shipped read-only cache (precomputed/: the default scenario's
# parsed YAML and accuracy arrays, keyed as the user's cache, so a fresh install's first
# `planner recommend` computes no accuracy). Commands only read it; this target writes it,
# from a run with the shipped cache off. tests/test_precomputed.py says when it is due.
precompute: $(VENV)/.installed
	rm -rf build/precompute
	PLANNER_NO_CACHE= PLANNER_NO_SHIPPED_CACHE=1 PLANNER_CACHE_DIR=build/precompute \
		$(VENV)/bin/planner recommend --json > /dev/null
	rm -rf precomputed/yaml precomputed/accuracy
	mkdir -p precomputed
	cp -r build/precompute/yaml build/precompute/accuracy precomputed/

bench: $(VENV)/.installed
	$(PY) benchmarks/engine_speed.py

clean:
	rm -rf $(VENV) build *.egg-info

# The README's two set-up commands: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: demo test install install-dev bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# torch is only for calibrate/validate; the exact CPU wheel (a range would pull CUDA).
$(VENV)/.torch: $(VENV)/.installed
	$(PIP) install -q 'torch==2.13.0'
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/planner recommend

test: $(VENV)/.torch
	$(PY) -m pytest

bench: $(VENV)/.installed
	$(PY) benchmarks/engine_speed.py

clean:
	rm -rf $(VENV) build *.egg-info

# Two commands do all the set-up:
#   make demo   creates .venv, installs tunixrt with Tunix (CPU JAX), runs a real tiny training run
#   make test   creates .venv, installs test tools + Chromium, runs the whole test suite
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.tunixrt-installed

.PHONY: demo test test-fast lint bench browser labextension clean examples

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[tunix,dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/tunixrt demo

browser: $(STAMP)
	VENV=$(VENV) SKIP_VENV_PKGS=1 tools/setup_browser.sh

labextension: $(STAMP)
	cd labextension && npm install --no-audit --no-fund --silent && npm run build:prod
	$(VENV)/bin/jupyter-builder develop --overwrite .

lint: $(STAMP)
	$(VENV)/bin/ruff check tunixrt_jupyter tunixrt tests benchmarks examples

test: $(STAMP) browser labextension
	$(VENV)/bin/ruff check tunixrt_jupyter tunixrt tests benchmarks examples
	$(PY) -m pytest -p no:cacheprovider tests examples --nbval --nbval-current-env --nbval-sanitize-with examples/sanitize.cfg

test-fast: $(STAMP)
	$(PY) -m pytest -p no:cacheprovider tests -m "not browser"

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) .tunixrt

examples: $(STAMP)
	$(PY) examples/execute_notebooks.py

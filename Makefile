# histo: `make demo` (set up + score the bundled sample), `make test` (set up + lint + the whole suite,
# doctests of histo/ included: see testpaths and addopts in pyproject.toml; the suite also builds the
# docs and checks the sources against Python 3.10, tests/test_interop.py), `make lint` (ruff only),
# `make docs` (API reference from the numpydoc docstrings + docs/*.md -> site/, mkdocs).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.histo-installed
APT_PACKAGES = xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-randr0 \
  libxcb-render-util0 libxcb-xinerama0 libxcb-xkb1 libxkbcommon-x11-0 libxcb-cursor0 \
  libgl1 libegl1 libfontconfig1 libdbus-1-3 chromium
DEMO_OUT ?= demo_out
LINT_PATHS = histo plugins tests benchmarks models

.PHONY: setup apt demo lint test test-fast bench docs clean

# System packages for the headless napari tests (Xvfb) and the report check (Chromium).
apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "apt: installing$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get install -y -q $$missing >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q $$missing >/dev/null; }; \
	fi

# torch==2.13.0 first: it is the CPU build on this machine's disk; an unpinned torch pulls CUDA.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip wheel setuptools
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[napari,dev]"
	touch $(STAMP)

setup: apt $(STAMP)

demo: setup
	$(BIN)/histo score histo/sample_data/cn_img02.tif -o $(DEMO_OUT)
	@echo "demo results in $(DEMO_OUT)/ (open $(DEMO_OUT)/report.html)"

# ruff: pyflakes (F), import order (I) and syntax errors (E9); settings in pyproject.toml.
lint: $(STAMP)
	$(BIN)/ruff check $(LINT_PATHS)

test: setup
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/python -m pytest -q -m "not slow and not napari"

docs: $(STAMP)
	$(BIN)/python -m histo.measure.fiber_table > docs/columns.md
	$(BIN)/mkdocs build -q -f mkdocs.yml -d site
	@echo "docs in site/ (open site/index.html)"

bench: setup
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build dist *.egg-info $(DEMO_OUT) site

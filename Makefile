# shipyard: `make demo` and `make test` work on a fresh machine (they create .venv first).
# constraints.txt pins the versions the test suite last passed with (regenerate it with
# `.venv/bin/pip freeze --exclude-editable > constraints.txt` after changing dependencies).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
EXTRAS := postgres,s3,redis,dask,scheduler,notebooks,xgboost,lightgbm,onnx,onnx-export,safetensors,dev

.PHONY: install demo test lint bench clean browser screenshots

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[$(EXTRAS)]"
	@# Byte-compile the package once: the CLI starts faster even where writing .pyc is off.
	$(PY) -m compileall -q src
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/shipyard demo

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy src

# The web UI's browser tests drive Debian's Chromium through Playwright (no browser download):
# installed with apt when missing and make runs as root, else the tests say they need it.
browser:
	@test -x /usr/bin/chromium || { test "$$(id -u)" = 0 && \
	  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	   --no-install-recommends chromium) >/dev/null 2>&1; } || echo "note: the browser tests \
	need Debian's Chromium at /usr/bin/chromium: sudo apt-get install chromium (they are \
	skipped without it, and fail under SHIPYARD_REQUIRE_SERVICES=1 as in CI)" >&2

test: lint browser
	$(PY) -m pytest -n 2 --dist loadgroup

bench: $(STAMP)
	$(PY) bench/datasets.py
	@for b in bench/*.py; do [ "$$b" = bench/datasets.py ] || $(PY) $$b; done

# The README's screenshots of the web UI (docs/img/*.png), from a fresh demo project.
screenshots: $(STAMP) browser
	$(PY) docs/img/screenshots.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

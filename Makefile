# poetrylab: two commands matter — `make lab` and `make test`.
# Both create .venv on first use and install the exact versions in requirements/lock.txt
# (hash-checked), then poetrylab itself. `make lock` refreshes the lock (see README).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
LOCK   := requirements/lock.txt
STAMP  := $(VENV)/.installed-stamp
# uv resolves the lock (make lock); installing from it needs only pip.
UV_VERSION := 0.13.9
LATEST := .venv-latest
SANITIZE := --nbval-sanitize-with notebooks/sanitize.cfg --nbval-current-env
# make test runs on WORKERS processes (pytest-xdist; CI has two cores), each test module,
# and each notebook (its cells share one kernel), whole on one of them. WORKERS=0: one process.
WORKERS ?= 2
PARALLEL = -n $(WORKERS) --dist loadscope

.PHONY: lab test test-fast test-latest notebooks site bench lock lock-upgrade install clean

## install: .venv with the locked dependencies, then poetrylab itself (editable, no deps)
install: $(STAMP)

$(STAMP): $(LOCK) pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (poetrylab)" >/dev/null
	touch $(STAMP)

## lab: start JupyterLab on notebooks/ (opens 00-welcome first; no news pop-up)
lab: $(STAMP)
	$(VENV)/bin/poetrylab lab

# The checks `make test` and `make test-latest` run, in the environment $(1). Each runs
# even when one before it failed, so one run reports every failure (and fails).
define run-tests
	status=0; \
	$(1)/bin/ruff check poetrylab tests twisted scripts notebooks/conftest.py docs/site deploy || status=$$?; \
	$(1)/bin/mypy || status=$$?; \
	$(1)/bin/python -m pytest tests $(PARALLEL) || status=$$?; \
	$(1)/bin/python -m pytest --nbval notebooks $(SANITIZE) $(PARALLEL) || status=$$?; \
	exit $$status
endef

## test: lint, type check, unit + integration tests, the site, every notebook under nbval (strict)
test: $(STAMP)
	$(call run-tests,$(VENV))

## test-fast: the unit and integration tests only
test-fast: $(STAMP)
	$(PY) -m pytest tests -x -q

## test-latest: the newest versions pyproject.toml allows, in $(LATEST), to see drift early
test-latest:
	$(PYTHON) -m venv --clear $(LATEST)
	$(LATEST)/bin/python -m pip install --quiet --upgrade pip setuptools
	$(LATEST)/bin/python -m pip install --quiet --upgrade --upgrade-strategy eager -e '.[test,hub]'
	$(LATEST)/bin/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	$(LATEST)/bin/python -m pip list --format=freeze > $(LATEST)/versions.txt
	$(call run-tests,$(LATEST))

## lock: re-resolve requirements/lock.txt after pyproject.toml changed, keeping every pin
## that still fits; lock-upgrade: move every pin to the newest allowed version
lock: $(VENV)/bin/uv
	$(PYTHON) -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")' \
	  | $(VENV)/bin/uv pip compile pyproject.toml - --extra test --extra hub --universal --python-version 3.11 \
	    --generate-hashes --custom-compile-command "make lock" --quiet -o $(LOCK) $(LOCK_FLAGS)

lock-upgrade: LOCK_FLAGS = --upgrade
lock-upgrade: lock

$(VENV)/bin/uv:
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet uv==$(UV_VERSION)

## notebooks: re-execute every notebook in place (outputs stored for nbval)
notebooks: $(STAMP)
	$(PY) scripts/execute_notebooks.py

## site: the course as a static website in build/site/ (stored outputs, never re-executed)
site: $(STAMP)
	$(PY) -m sphinx -b html -q -E -W --keep-going docs/site build/site

## bench: the full client sweep, 1 to 10,000 servers (about 8 minutes on a quiet machine), figures in bench-out/;
## it refuses to start on a busy machine unless FORCE=1
bench: $(STAMP)
	$(PY) scripts/bench_clients.py --out-dir bench-out $(if $(FORCE),--force)

clean:
	rm -rf $(VENV) $(LATEST) build dist *.egg-info

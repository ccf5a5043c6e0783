# poetrylab: two commands matter — `make lab` and `make test`.
# Both create .venv on first use and install everything pyproject.toml lists.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: lab test test-fast notebooks bench clean install

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]' --config-settings editable_mode=compat
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (poetrylab)" >/dev/null
	touch $(STAMP)

## lab: start JupyterLab on notebooks/ (opens 00-welcome first)
lab: $(STAMP)
	$(VENV)/bin/poetrylab lab

## test: lint, unit + integration tests, and every notebook under nbval (strict)
test: $(STAMP)
	$(VENV)/bin/ruff check poetrylab tests twisted scripts
	$(PY) -m pytest tests
	$(PY) -m pytest --nbval notebooks --nbval-sanitize-with notebooks/sanitize.cfg --nbval-current-env

## test-fast: the unit and integration tests only
test-fast: $(STAMP)
	$(PY) -m pytest tests -x -q

## notebooks: re-execute every notebook in place (outputs stored for nbval)
notebooks: $(STAMP)
	$(PY) scripts/execute_notebooks.py

## bench: the full client sweep, 1 to 1,000 servers (about 18 minutes), figures in bench-out/
bench: $(STAMP)
	$(PY) scripts/bench_clients.py --out-dir bench-out

clean:
	rm -rf $(VENV) build dist *.egg-info

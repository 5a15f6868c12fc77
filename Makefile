# The two commands of the README. Both build the virtual environment first.
#   make lab    install everything and open JupyterLab on notebooks/
#   make test   install everything and run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
CHP    := $(VENV)/node/node_modules/.bin/configurable-http-proxy

.PHONY: lab test install lint bench clean

install: $(VENV)/.installed $(CHP)

# The package with the `dev` extra: the lab (the same ranges as requirements.txt,
# a test checks they agree) plus the tools for tests and instructors.
$(VENV)/.installed: pyproject.toml requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@# jsonschema's optional rfc3987-syntax only checks "iri" formats and adds
	@# 2-4 s to every Jupyter server start (the hub test starts five at once).
	$(PY) -m pip uninstall --yes --quiet rfc3987-syntax
	touch $@

# JupyterHub's proxy for tests/test_hub.py, from npm into the ignored .venv/.
# Without npm the hub test is skipped (and fails in CI, where .ci/run installs npm).
$(CHP):
	@if command -v npm >/dev/null; then \
	    npm install --prefix $(VENV)/node --no-audit --no-fund --loglevel=error \
	        configurable-http-proxy@5; \
	else echo "npm not found: tests/test_hub.py will be skipped"; fi

# Jupyter refuses to run as root unless told; root is common in containers and VMs.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: install
	$(VENV)/bin/jupyter lab notebooks/ $(ROOT_FLAG)

test: install
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

bench: install
	$(PY) bench/handshake.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

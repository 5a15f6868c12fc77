# The two commands of the README. Both build the virtual environment first.
#   make lab    install everything and open JupyterLab on notebooks/
#   make test   install everything and run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: lab test install lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -e '.[dev]'
	touch $@

lab: install
	$(VENV)/bin/jupyter lab notebooks/

test: install
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

bench: install
	$(PY) bench/handshake.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

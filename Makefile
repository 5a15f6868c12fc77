# The two commands of the README. Both build the virtual environment first.
#   make lab    install everything and open JupyterLab on the students' edition
#               (release/ and release/ru/, made from notebooks/ by tools/release.py;
#               git-ignored)
#   make test   install everything, then ruff, mypy and the whole test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
CHP    := $(VENV)/node/node_modules/.bin/configurable-http-proxy

.PHONY: lab lab-instructor test install lint bench clean catalog

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

# The students' edition: nbgrader's generate_assignment on each notebook (solutions
# and hidden tests out), with the mistakes list; remade when a notebook changes.
# English in release/, Russian (from notebooks/ru/) in release/ru/: one JupyterLab shows both.
release/.made: $(VENV)/.installed notebooks/*.ipynb notebooks/MISTAKES.md \
               notebooks/ru/*.ipynb notebooks/ru/MISTAKES.md tools/release.py
	$(PY) tools/release.py --out release
	$(PY) tools/release.py --lang ru --out release/ru
	touch $@

lab: install release/.made
	$(VENV)/bin/jupyter lab release/ $(ROOT_FLAG)

# The instructor's edition: the notebooks with their solutions and hidden tests.
lab-instructor: install
	$(VENV)/bin/jupyter lab notebooks/ $(ROOT_FLAG)

test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(PY) -m pytest

# The messages' catalogs (labcrypto/i18n.py says how they are used). After adding or
# changing a message in the code: `make catalog`, translate what is new or marked
# fuzzy in the .po, `make catalog` again (it compiles the .mo that ships with the
# package). tests/test_i18n.py fails until every message has its translation.
LOCALE  := labcrypto/locale
PYBABEL := $(VENV)/bin/pybabel
UPDATE  := $(PYBABEL) -q update -D labcrypto -i $(LOCALE)/labcrypto.pot -d $(LOCALE) -l ru \
           --init-missing --previous --ignore-obsolete --width 100
catalog: install
	$(PYBABEL) -q extract --project labcrypto --add-location file --sort-output --width 100 \
	    --omit-header -o $(LOCALE)/labcrypto.pot labcrypto
	@# Only rewrite the .po when a message changed (an update always moves its date).
	$(UPDATE) --check --ignore-pot-creation-date 2>/dev/null || $(UPDATE)
	$(PYBABEL) compile -D labcrypto -d $(LOCALE) --statistics

bench: install
	$(PY) bench/handshake.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

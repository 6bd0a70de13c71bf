# User entry points. `make demo` and `make test` set the environment up first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export PYTHON VENV

.PHONY: setup test demo clean-venv mutation

setup:
	@bash tools/setup_env.sh

test: setup
	$(PY) -m pytest -q tests

demo: setup
	$(PY) tools/demo.py

# Mutation testing of the core modules (hours on 2 cores; not in CI):
# make mutation MUTATION_GROUPS="gcl bce_loss" runs some groups (tools/mutation.sh).
mutation: setup
	$(PY) -m pip install -q -c requirements/constraints.txt -r requirements/mutation.in
	MUTATION_GROUPS="$(MUTATION_GROUPS)" bash tools/mutation.sh

clean-venv:
	rm -rf $(VENV)

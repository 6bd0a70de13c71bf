# User entry points. `make demo` and `make test` set the environment up first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export PYTHON VENV

.PHONY: setup test demo clean-venv

setup:
	@bash tools/setup_env.sh

test: setup
	$(PY) -m pytest -q tests

demo: setup
	@if [ -f tools/demo.py ]; then $(PY) tools/demo.py; else \
	  echo "make demo: the main job (tools/demo.py) is not implemented yet; see README.md"; exit 2; fi

clean-venv:
	rm -rf $(VENV)

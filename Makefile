# The two set-up commands of the README:
#   make train   - installs into .venv, then runs the default experiment (no download needed)
#   make test    - installs into .venv, then runs the test suite
# On a machine without a GPU the CPU build of torch is installed; set TORCH_SPEC to change it.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python

.PHONY: install test train cuda-check bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[keops,train,dev]"
	touch $@

install: $(VENV)/.installed

test: $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS)

train: $(VENV)/.installed
	$(VENV)/bin/ssm-train $(ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info

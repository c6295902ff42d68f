# The two set-up commands of the README:
#   make train   - installs into .venv, then runs the default experiment (no download needed)
#   make test    - installs into .venv, then runs the test suite
# On a machine without a GPU the CPU build of torch is installed; set TORCH_SPEC to change it.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python

.PHONY: install test train cuda-check bench clean results-page

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

# Compile-only check of every CUDA kernel source with plain nvcc (no torch needed), for sm_80 and
# sm_90, warnings as errors, two files at a time; also refuses torch headers in kernel sources.
NVCC ?= nvcc
CUDA_CHECK_FLAGS ?= -std=c++17 -O3 -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
	--Werror all-warnings -Xcompiler -Wall,-Wextra,-Werror

cuda-check:
	@command -v $(NVCC) >/dev/null 2>&1 || { echo "cuda-check: nvcc not found (install the CUDA toolkit or set NVCC=/path/to/nvcc)" >&2; exit 1; }
	@if grep -rlE '#[[:space:]]*include[[:space:]]*[<"](ATen|c10|torch)/' --include='*.cu' --include='*.cuh' --include='*.h' csrc | grep -vx 'csrc/ops.h'; then \
		echo "cuda-check: the kernel sources above include ATen/c10/torch headers" >&2; exit 1; fi
	@test -n "$$(find csrc -name '*.cu')" || { echo "cuda-check: no .cu sources under csrc/" >&2; exit 1; }
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && $(NVCC) --version | tail -n 2 && \
	find csrc -name '*.cu' | sort | xargs -P 2 -I{} sh -c \
		'$(NVCC) -c $(CUDA_CHECK_FLAGS) -o "$$2/$$(echo "$$1" | tr / _).o" "$$1" && echo "cuda-check: ok $$1"' _ {} "$$tmp"

clean:
	rm -rf $(VENV) build dist *.egg-info

# The learning-results page (docs/results.md) from the result JSONs under benchmarks/results/.
results-page: $(VENV)/.installed
	$(VENV)/bin/ssm-report benchmarks/results --markdown docs/results.md --title "Learning results" \
		--intro benchmarks/results/intro.md

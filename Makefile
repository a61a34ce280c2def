# deblurrt developer tasks. `make setup` builds .venv with everything that installs on a CPU machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# The CPU build of torch; an unpinned torch pulls a multi-GB CUDA build. Users with GPUs install their own.
TORCH_CPU ?= torch==2.13.0

.PHONY: setup test lint demo bench clean help gpu-check

help:
	@echo "make setup   create $(VENV) with deblurrt[dev] (CPU torch: $(TORCH_CPU))"
	@echo "make test    run the test suite (CPU; GPU tests skip themselves)"
	@echo "make lint    ruff"
	@echo "make demo    run the embedded demo (virtual camera -> default model -> runs/demo/)"
	@echo "make bench   pytest-benchmark suites (BENCH_ARGS=--benchmark-compare to compare runs)"
	@echo "make gpu-check  one-shot check on a CUDA GPU with TensorRT, <= 8 min, own venv (GPU_CHECK_OUT=$(GPU_CHECK_OUT))"

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "$(TORCH_CPU)"
	$(PIP) install --quiet -e ".[dev]" "$(TORCH_CPU)"
	touch $@

setup: $(VENV)/.installed

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check deblurrt train export runtime bench tests scripts

# The default job: shaky virtual camera over assets/coffee.png -> default model (weights/unet_nano_prior.onnx)
# -> runs/demo/ (side-by-side demo.mp4, stats.json, PNG frames).
demo: setup
	$(VENV)/bin/deblurrt demo

# pytest-benchmark suites (bench/suites; not part of `make test`). Each run is saved under .benchmarks/;
# compare with the previous one: make bench BENCH_ARGS=--benchmark-compare
BENCH_ARGS ?=
bench: setup
	$(PY) -m pytest bench/suites --benchmark-autosave --benchmark-columns=min,median,mean,max,rounds \
		--benchmark-sort=fullname $(BENCH_ARGS)

# One-shot GPU check (scripts/gpu_check.sh): builds its own fresh venv, so it does not depend on setup.
GPU_CHECK_OUT ?= runs/gpu_check
gpu-check:
	bash scripts/gpu_check.sh $(GPU_CHECK_OUT)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

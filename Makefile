# deblurrt developer tasks. `make setup` builds .venv with everything that installs on a CPU machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# PyTorch, CPU only: torch==$(TORCH_VERSION)+cpu from PyTorch's CPU wheel index (about 200 MB, no nvidia-*
# packages). Plain PyPI's torch==$(TORCH_VERSION) is the CUDA build plus ~17 nvidia-* packages (several GB):
# it is installed only when the CPU index cannot be reached, and setup says so. Users with GPUs install their
# own torch first (pytorch.org); `make setup TORCH_INDEX=` skips the CPU index.
TORCH_VERSION ?= 2.13.0
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu

.PHONY: setup test lint demo bench gui clean help gpu-check

help:
	@echo "make setup   create $(VENV) with deblurrt[dev] and CPU-only torch $(TORCH_VERSION)"
	@echo "make test    run the test suite (CPU; GPU tests skip themselves)"
	@echo "make lint    ruff"
	@echo "make demo    run the embedded demo (virtual camera -> default model -> runs/demo/)"
	@echo "make bench   pytest-benchmark suites (BENCH_ARGS=--benchmark-compare to compare runs)"
	@echo "make gpu-check  one-shot check on a CUDA GPU with TensorRT, <= 8 min, own venv (GPU_CHECK_OUT=$(GPU_CHECK_OUT))"
	@echo "make gui     swap opencv-python-headless for opencv-python in $(VENV) (windows: display://0)"

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	@if [ -n "$(TORCH_INDEX)" ] \
			&& $(PY) -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=10)" \
				"$(TORCH_INDEX)/" 2>/dev/null \
			&& $(PIP) install --quiet --index-url "$(TORCH_INDEX)" "torch==$(TORCH_VERSION)"; then \
		:; \
	else \
		echo "make setup: PyTorch's CPU index ($(TORCH_INDEX)) cannot be reached or has no torch==$(TORCH_VERSION)" \
			"for this Python: installing it from the configured package index instead (on plain PyPI that is" \
			"the CUDA build with ~17 nvidia-* packages, several GB)"; \
		$(PIP) install --quiet "torch==$(TORCH_VERSION)"; \
	fi
	$(PIP) install --quiet -e ".[dev]" "torch==$(TORCH_VERSION)"
	@$(PY) -c "import torch; print('make setup: installed torch', torch.__version__, '(CUDA ' + torch.version.cuda + ' build)' if torch.version.cuda else '(CPU-only build)')"
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

# A window (`deblurrt run INPUT` without OUTPUT, display://0, demo --display) needs OpenCV with a GUI, which
# the headless wheel that deblurrt depends on lacks. Both wheels install the same cv2 module, so an extra
# cannot add one "instead of" the other: this swaps them, same version. Run it again after `make setup`
# reinstalls (setup brings the headless wheel back).
gui: setup
	@version=$$($(PY) -c "import importlib.metadata as m; print(m.version('opencv-python-headless'))" 2>/dev/null \
		|| $(PY) -c "import cv2; print(cv2.__version__)"); \
	$(PIP) uninstall --quiet -y opencv-python-headless; \
	$(PIP) install --quiet "opencv-python==$$version" && \
	$(PY) -c "import cv2; print('make gui: OpenCV', cv2.__version__, 'with GUI:', [l.strip() for l in cv2.getBuildInformation().splitlines() if l.strip().startswith(('GTK', 'QT', 'Win32 UI', 'Cocoa'))] or 'none')"

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

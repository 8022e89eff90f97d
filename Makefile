# The two commands of the README. Each one installs everything it needs first.
#   make run   - the main job: check the repo, then train + evaluate the SmolLM2 config on this machine
#   make test  - the test suite (real Axolotl training and real eval on CPU included)

VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
HAHA := $(VENV)/bin/haha
MAIN_CONFIG ?= haha-smollm2-135m-lora-001

.PHONY: install run test lint bench clean

install: $(VENV)/.installed

# torch first, pinned: this machine's pip finds the 2.13.0 CPU wheel locally, where plain `torch`
# (pulled in by Axolotl) would download a multi-GB CUDA build. RunPod's SDK goes last, in its own pip
# call: its pins (typer, python-dotenv) conflict on paper with Axolotl's exact ones.
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[train,dev]'
	$(PIP) install --quiet -e '.[cloud]'
	$(HAHA) models seed
	touch $@

run: install
	$(HAHA) check
	$(HAHA) run $(MAIN_CONFIG) --force
	$(HAHA) report

test: install
	$(PY) -m pytest -q -ra

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

clean:
	rm -rf $(VENV) .haha

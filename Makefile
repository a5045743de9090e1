# Two commands do all set-up on a fresh Debian/Ubuntu machine with Python 3.10+:
#   make demo   the main job: papermill runs nbs/train.ipynb on the embedded demo preset
#   make test   the checks CI runs: notebooks clean and in sync, workflows valid, nbdev_test, pytest (fast tier, then slow)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# A CPU build of torch: on Linux x86-64 this pin is served from a local wheel on our machines; elsewhere
# override it, e.g. TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed
DEMO_DIR ?= runs/demo
export HF_HUB_OFFLINE ?= 1

.PHONY: install espeak gimp-help browser kenlm demo test test-fast lab sync-check lint-workflows readme readme-check results results-check record docs outputs clean

$(STAMP): setup.py settings.ini
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@if [ "$$(uname -s)-$$(uname -m)" = "Linux-x86_64" ] && ! $(BIN)/python -c "import torch" 2>/dev/null; then \
		$(BIN)/python -m pip install -q $(TORCH_SPEC); fi
	$(BIN)/python -m pip install -q -e ".[dev]"
	@# pyctcdecode 0.5 declares numpy<2 but runs on numpy 2: without its declared dependencies (pygtrie and kenlm come
	@# from the package's own requirements), so numpy 2 stays
	$(BIN)/python -m pip install -q --no-deps "pyctcdecode==0.5.0"
	@touch $@

install: $(STAMP)

espeak:
	@command -v espeak-ng >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing espeak-ng (apt)"; apt-get update -qq && apt-get install -y -qq espeak-ng >/dev/null; \
		else echo "espeak-ng is missing; install it with: sudo apt-get install -y espeak-ng"; exit 1; fi; }

# the Nynorsk GIMP manual, the real text of the synthetic corpus (nbs/09a_texts.ipynb): Debian's gimp-help-nn, unpacked
# into the venv with dpkg-deb, because installing it would pull in a web browser for its www-browser dependency
GIMP_HELP_DIR := /usr/share/gimp/2.0/help/nn
gimp-help: | $(STAMP)
	@test -d $(GIMP_HELP_DIR) || test -d $(VENV)$(GIMP_HELP_DIR) || test -n "$${NYNORSK_ASR_GIMP_HELP:-}" || { \
		tmp=$$(mktemp -d); chmod 777 $$tmp; \
		( cd $$tmp && apt-get download -qq gimp-help-nn 2>/dev/null ) || \
		{ [ "$$(id -u)" = 0 ] && apt-get update -qq && ( cd $$tmp && apt-get download -qq gimp-help-nn ); } || \
		{ echo "gimp-help-nn could not be downloaded; install it with: sudo apt-get install -y gimp-help-nn"; exit 1; }; \
		dpkg-deb -x $$tmp/gimp-help-nn_*.deb $(VENV) && rm -rf $$tmp && echo "unpacked gimp-help-nn into $(VENV)$(GIMP_HELP_DIR)"; }

# headless Chromium and its driver for the JupyterLab browser test (Debian's packages; a browser downloaded at
# install time would not work offline); without them that one test is skipped
browser:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing chromium and chromium-driver (apt)"; apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; \
		else echo "chromium is missing (the browser test will be skipped); install: sudo apt-get install -y chromium chromium-driver"; fi; }

# KenLM's estimators (lmplz, build_binary) ship in no wheel or Debian package: built once from the kenlm sdist's
# source with CMake and Boost (about a minute on 2 cores), into the venv; a second run finds them and builds nothing
KENLM_BIN := $(VENV)/kenlm/bin
KENLM_VERSION ?= 0.3.0
KENLM_APT := cmake build-essential libboost-program-options-dev libboost-system-dev libboost-thread-dev libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev
$(KENLM_BIN)/lmplz: | $(STAMP)
	@command -v cmake >/dev/null 2>&1 && [ -e /usr/include/boost/program_options.hpp ] || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing KenLM's build dependencies (apt)"; apt-get update -qq && apt-get install -y -qq $(KENLM_APT) >/dev/null; \
		else echo "KenLM needs: sudo apt-get install -y $(KENLM_APT)"; exit 1; fi; }
	@set -e; tmp=$$(mktemp -d); \
		$(BIN)/python -m pip install -q setuptools wheel; \
		$(BIN)/python -m pip download -q --no-deps --no-binary kenlm --no-build-isolation -d $$tmp kenlm==$(KENLM_VERSION); \
		tar xzf $$tmp/kenlm-$(KENLM_VERSION).tar.gz -C $$tmp; \
		cmake -S $$tmp/kenlm-$(KENLM_VERSION) -B $$tmp/build -DCMAKE_BUILD_TYPE=Release >/dev/null; \
		$(MAKE) -s -C $$tmp/build -j$$(nproc) lmplz build_binary >/dev/null; \
		mkdir -p $(KENLM_BIN); cp $$tmp/build/bin/lmplz $$tmp/build/bin/build_binary $(KENLM_BIN)/; rm -rf $$tmp
	@echo "built $(KENLM_BIN)/lmplz and build_binary"

kenlm: $(KENLM_BIN)/lmplz

demo: install espeak gimp-help kenlm
	@mkdir -p $(DEMO_DIR)
	$(BIN)/papermill nbs/train.ipynb $(DEMO_DIR)/train.ipynb -p output_dir $(abspath $(DEMO_DIR)) --log-output

sync-check: install
	@bash .ci/check_sync.sh $(BIN)

# README.md is rendered from nbs/index.ipynb (its single source; nbdev_readme would need Quarto)
readme:
	$(PYTHON) .ci/render_readme.py

readme-check:
	@$(PYTHON) .ci/render_readme.py --check

# the results of record (nbs/31_results.ipynb): RESULTS.md, bench/demo.png, the demo summary in nbs/index.ipynb and
# README.md, generated from bench/results.jsonl, bench/runs.jsonl and bench/bands.yaml
results: install
	$(BIN)/python .ci/render_results.py

# the docs site (nbdev's convention, `_docs/`): nbdev's processing, then smalldocs offline (DOCS_RENDERER=--quarto
# renders with Quarto instead, as the deploy workflow does); it never writes README.md
DOCS_RENDERER ?=
docs: install
	$(BIN)/python .ci/docs.py $(DOCS_RENDERER)

# run every notebook's examples and keep their outputs (figures, tables) for GitHub and the docs; fails on a stderr
# box or a progress-bar widget in an output; then nbdev_clean
outputs: install espeak gimp-help kenlm
	$(BIN)/python .ci/run_notebooks.py

# the demo run's figures added to bench/runs.jsonl, then checked against the demo preset's band (exit 9 outside it)
record: install
	$(BIN)/nynorsk-asr record $(DEMO_DIR) --results bench/runs.jsonl --bands bench/bands.yaml

results-check: install
	@$(BIN)/python .ci/render_results.py --check

lint-workflows: install
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml

# the tests in two tiers (tests/conftest.py): the fast one first (no training, no browser), then the slow one
test: install espeak gimp-help browser kenlm sync-check readme-check results-check lint-workflows
	$(BIN)/nbdev_test --n_workers 1 --skip_file_re '^train'
	$(BIN)/python -m pytest -q -m "not slow" tests
	$(BIN)/python -m pytest -q -m slow tests

test-fast: install espeak gimp-help sync-check
	$(BIN)/python -m pytest -q -m "not slow" tests

# JupyterLab at the repository root (README, runs/ and nbs/ all browsable), opening the index notebook; notebooks
# are cleaned on save by nbdev's hook, so editing in Lab never breaks `make test`; --allow-root where containers run as root
LAB_ARGS ?=
lab: install
	$(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" --ContentsManager.pre_save_hook=nbdev.clean.clean_jupyter \
		$(if $(filter 0,$(shell id -u)),--allow-root,) $(LAB_ARGS) nbs/index.ipynb

clean:
	rm -rf runs _proc _docs .pytest_cache

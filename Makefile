# Two commands for a fresh machine: `make book` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
STAGE := _build/src
export HF_DATASETS_OFFLINE := 1
export HF_HUB_OFFLINE := 1
export MPLBACKEND := Agg
export PYTHONUNBUFFERED := 1
# small real data lives beside the project; used only when present (cpu-real, data tests)
export SBIR_DATA ?= $(abspath ../shared/data)
# the synthetic benchmark cache stays inside the checkout so runs never touch $HOME
export SBIR_CACHE ?= $(abspath .cache/sbirlib)

.PHONY: help setup vendor chapters html book test unit check-html strip clean

help:
	@echo "make book    - set up .venv, execute every chapter (smoke profile), build _build/html"
	@echo "make test    - unit tests + every chapter's papermill regression run + the book build"
	@echo "make strip   - remove outputs from the committed chapter notebooks"
	@echo "make check-html - screenshot a chapter page with headless Chromium (if installed)"

$(STAMP): requirements.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

vendor: $(STAMP)
	$(PY) tools/vendor_assets.py

chapters: setup vendor
	$(PY) tools/run_chapters.py --stage $(STAGE)

html: vendor
	rm -rf _build/html
	# the staged sources must carry the offline widget/MathJax assets
	mkdir -p $(STAGE)/book/_vendor && cp -r book/_vendor/. $(STAGE)/book/_vendor/
	$(VENV)/bin/jupyter-book build $(STAGE) --path-output . -W -n --keep-going
	@echo "book: $(abspath _build/html/index.html)"

book: chapters html

unit: setup
	$(VENV)/bin/pytest -q -m "not notebooks"

test: unit book
	$(VENV)/bin/pytest -q -m notebooks tests/test_book_output.py
	$(MAKE) check-html

check-html:
	@if command -v chromium >/dev/null; then $(PY) tools/check_html.py; \
	else echo "check-html: chromium not installed (apt-get install -y chromium); skipped"; fi

strip: setup
	$(PY) tools/strip_notebooks.py book/chapters/*.ipynb book/_chapter_template.ipynb

clean:
	rm -rf _build .cache

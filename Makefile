# Two commands on a fresh machine: `make demo` (bundled example) and `make test` (the whole suite).
PYTHON ?= python3
VENV ?= .venv
# pytest processes (pytest-xdist): 2 fit this project's 2-core machines (the whole suite 8.6 against 14.7 minutes
# in one process); TEST_WORKERS=0 runs it in one.
TEST_WORKERS ?= 2
BIN := $(VENV)/bin

.PHONY: demo test test-fast lint benchmark clean python-check

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' || \
		{ echo "onnxism needs Python >= 3.10; $(PYTHON) is $$($(PYTHON) --version 2>&1): run make with PYTHON=python3.11 (or another)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# A .venv made earlier with a Python older than 3.10 is refused with how to start again (make clean).
python-check: $(BIN)/python
	@$(BIN)/python -c 'import sys; sys.exit(sys.version_info < (3, 10))' || \
		{ echo "$(VENV) was made with $$($(BIN)/python --version 2>&1); onnxism needs Python >= 3.10: run make clean, then make again (with PYTHON=python3.11 or another if python3 is older)"; exit 1; }

# Core package only (no TensorFlow, no PyTorch): run ISM on the bundled trained model and show the motif it finds.
# (a regular install, not an editable one: setuptools prints a notice box for editable installs)
demo: python-check
	$(BIN)/python -m pip install --quiet '.[cpu]'
	$(BIN)/onnxism info examples/motif_model.onnx
	$(BIN)/onnxism run examples/motif_model.onnx examples/seqs.npy -o demo_scores.npz --force
	$(BIN)/python examples/show_motif.py demo_scores.npz

# Everything the tests need (converters' frameworks included), then the whole suite, slow tests included.
test: python-check
	$(BIN)/python -m pip install --quiet -e '.[cpu,keras,torch,plot,genome,parquet,ray,test]'
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

# The suite without the slow (full-size model) tests.
test-fast: $(BIN)/python
	$(BIN)/python -m pytest -n $(TEST_WORKERS) -m "not slow"

# Style and import rules (pyproject.toml [tool.ruff]); needs the [test] extra, which `make test` installs.
lint: $(BIN)/python
	$(BIN)/python -m ruff check .

benchmark: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[cpu,keras,torch]'
	$(BIN)/python benchmarks/run_ism_benchmark.py --fastism --tangermeme
	$(BIN)/python benchmarks/count_multiply_adds.py --results benchmarks/results/ism_cpu.json
	$(BIN)/python benchmarks/run_tism_benchmark.py --repeats 5
	$(BIN)/python benchmarks/run_flanks_benchmark.py

clean:
	rm -rf $(VENV) demo_scores.npz *.egg-info build

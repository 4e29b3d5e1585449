# The two commands of the README. Each one does all the set-up it needs on a fresh clone.
PY := .venv/bin/python
SEED ?= 0

.PHONY: setup demo test test-fast lint

setup:
	bash tools/setup_env.sh

# Main job: generate digits-LT, train RetinaNet with Adaptive Focal Loss on CPU, evaluate
# (COCO AP and LVIS APr/APc/APf).
demo: setup
	bash tools/demo.sh

# Lint (ruff, configured in pyproject.toml), then the whole test suite, slow end-to-end tests
# included (what CI runs). pytest's exit code 5 (no test collected) is a failure here like any
# other non-zero code.
test: setup lint
	$(PY) -m pytest -q -ra tests

lint: setup
	$(PY) -m ruff check .

# Everything except the end-to-end training tests.
test-fast: setup lint
	$(PY) -m pytest -q -ra -m "not slow" tests

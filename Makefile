# `make demo` and `make test` bring .venv up to date first (seconds when it
# already is; the first run builds mmcv, about 10 minutes in all).
PY := .venv/bin/python
# Test processes (pytest-xdist): one per core of a 2-core CI machine; each
# file's tests stay in one process, so module fixtures are built once.
TEST_WORKERS ?= 2

LINTED := distkd_mm tools tests configs .dev_scripts requirements setup.py

.PHONY: env demo test test-fast lint clean

# SETUP_ARGS: e.g. "--system-torch --find-links DIR --no-index" (see
# .dev_scripts/setup_env.sh --help); remembered by the venv. The versions:
# requirements/stack.txt.
env:
	@bash .dev_scripts/setup_env.sh $(SETUP_ARGS)

demo: env
	$(PY) tools/demo.py

test: env
	$(PY) -m pytest tests -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile

# Without the tests marked slow (Runners, processes, library tools).
test-fast: env
	$(PY) -m pytest tests -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile \
		-m "not slow"

lint: env
	$(PY) -m flake8 $(LINTED)
	$(PY) -m isort --check-only --diff $(LINTED)
	$(PY) -m yapf --diff --recursive $(LINTED)

clean:
	rm -rf work_dirs

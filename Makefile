# Two commands do all the set-up (README): `make demo` and `make test`.
PYTHON ?= python3
PIP := $(PYTHON) -m pip install --quiet --disable-pip-version-check

.PHONY: install test-deps demo test

# torch first: the CPU build when none is installed (users with a GPU bring their own torch).
install:
	@$(PYTHON) -c "import torch" 2>/dev/null || $(PIP) torch==2.13.0
	@$(PIP) -e .

# Test dependencies; the HTML report's browser test needs Debian's chromium (installed when root with apt-get).
test-deps: install
	@$(PIP) -e '.[test]'
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } || echo 'chromium not installed: the HTML report browser test will be skipped'

demo: install
	$(PYTHON) -m profkit demo

test: test-deps
	$(PYTHON) -m pytest -q

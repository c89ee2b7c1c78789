# The two set-up commands of the README: `make run` and `make test`. Both create .venv and
# install fastgw into it (editable, compiling the Cython core); `make test` also installs the
# servers the integration tests start on 127.0.0.1 (nginx, redis-server, wrk, haproxy).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.fastgw-installed
SOURCES := pyproject.toml setup.py $(wildcard src/fastgw/_core/*.pyx src/fastgw/_core/*.pxd src/fastgw/_core/*.pxi src/fastgw/_core/*.h)

.PHONY: run test build sysdeps bench annotate sanitize clean

$(STAMP): $(SOURCES)
	bash scripts/sysdeps.sh --build-only
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip 'setuptools>=77' wheel
	$(PY) -m pip install -q -e '.[test]'
	touch $@

build: $(STAMP)
	$(PY) setup.py -q build_ext --inplace

run: $(STAMP)
	$(VENV)/bin/fastgw run $(ARGS)

sysdeps:
	bash scripts/sysdeps.sh

test: sysdeps $(STAMP)
	$(PY) -m pytest $(or $(PYTEST_ARGS),-q)

bench: build
	$(PY) bench/run.py $(ARGS)

sanitize: $(STAMP)
	PYTHON=$(PY) bash scripts/sanitize.sh $(PYTEST_ARGS)

annotate: $(STAMP)
	FASTGW_ANNOTATE=1 $(PY) setup.py -q build_ext --inplace --force

clean:
	rm -rf build src/fastgw/_core/*.c src/fastgw/_core/*.so src/fastgw/_core/*.html

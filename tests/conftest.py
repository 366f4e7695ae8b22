"""The barge-in fuzz's seed: chosen once per test session (``FUZZ_SEED`` if set), printed."""

from __future__ import annotations

import os
import random


def pytest_configure(config: object) -> None:
    os.environ.setdefault("FUZZ_SEED", str(random.SystemRandom().randrange(2**32)))


def pytest_report_header() -> str:
    return f"barge-in fuzz: FUZZ_SEED={os.environ['FUZZ_SEED']} (set it to replay this run)"

"""Whether the tests run under CI, one rule for every file: ``CI`` set to anything but empty,
``0`` or ``false`` (any case). CI services set ``CI=true`` (GitHub, GitLab), ``CI=1`` or
``CI=True``; a developer may export ``CI=false`` to say "not CI". Under CI a missing
dependency (redis-server, nginx, the peers venv, the browser) fails the test instead of
skipping it, and the barge-in fuzz runs its CI counts."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import NoReturn

import pytest

NOT_CI = frozenset({"", "0", "false"})


def in_ci(environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get("CI", "").strip().lower() not in NOT_CI


def missing(reason: str) -> NoReturn:
    """Skip, saying why; under CI, fail with the same reason (CI must have everything)."""
    if in_ci():
        pytest.fail(f"{reason} (CI={os.environ.get('CI')!r}: under CI this fails)", pytrace=False)
    pytest.skip(reason)

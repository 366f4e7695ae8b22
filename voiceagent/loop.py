"""The event loop the commands run on: uvloop (libuv) where it is installed, else asyncio's
own. ``--loop asyncio`` or ``VOICEAGENT_LOOP=asyncio`` chooses the plain loop; the flag wins
over the variable. bench/phone_load.py measures both."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import anyio

logger = logging.getLogger(__name__)

LOOPS = ("uvloop", "asyncio")
T = TypeVar("T")


def have_uvloop() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def choose(flag: str | None, env: Mapping[str, str]) -> str:
    """``uvloop`` or ``asyncio``: the flag, else ``VOICEAGENT_LOOP``, else uvloop where
    installed. Asking for uvloop where it is missing runs the plain loop and says so."""
    wanted = flag or env.get("VOICEAGENT_LOOP", "").strip().lower() or None
    if wanted is not None and wanted not in LOOPS:
        raise ValueError(f"VOICEAGENT_LOOP={wanted!r}: use uvloop or asyncio")
    if wanted == "asyncio":
        return "asyncio"
    if have_uvloop():
        return "uvloop"
    if wanted == "uvloop":
        logger.warning("uvloop is not installed here: running on asyncio's own loop")
    return "asyncio"


def run(
    func: Callable[..., Awaitable[T]],
    *args: Any,
    loop: str | None = None,
    env: Mapping[str, str] | None = None,
) -> T:
    """``anyio.run(func, *args)`` on the loop ``choose(loop, env)`` names."""
    import os

    chosen = choose(loop, os.environ if env is None else env)
    return anyio.run(
        func, *args, backend="asyncio", backend_options={"use_uvloop": chosen == "uvloop"}
    )

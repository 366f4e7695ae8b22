"""The project's side of the peer tests (runs in our venv): find ``.venv/peers``, run a
driver script there as a subprocess and read its JSON summary, start a peer-side server.

``make peers`` installs the peers venv (Makefile). Without it a test skips and says why;
under CI (tests/ci_env.py) a missing peers venv fails instead: CI must run them.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import Process
from ci_env import missing

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PEERS = ROOT / ".venv" / "peers"
PEERS_PYTHON = PEERS / "bin" / "python"


def peers_python() -> Path:
    """The peers venv's python; else a skip that says why (a failure under CI)."""
    if PEERS_PYTHON.exists() and (PEERS / ".installed").exists():
        return PEERS_PYTHON
    failed = PEERS / "install-failed"
    if failed.exists():
        reason = failed.read_text(errors="replace").strip().splitlines()[-1:] or ["unknown"]
        why = f"peer clients not installed: {reason[0]} (see {PEERS / 'install.log'})"
    else:
        why = f"peer clients not installed: no finished install in {PEERS} (run `make peers`)"
    missing(why)


def _tail(data: bytes, limit: int = 4000) -> str:
    text = data.decode(errors="replace")
    return text[-limit:]


async def run_peer(script: str, *args: str, timeout_s: float = 90.0) -> dict[str, Any]:
    """Run ``tests/peers/<script>`` in the peers venv; its JSON summary (last stdout line)."""
    python = peers_python()
    with anyio.fail_after(timeout_s):
        result = await anyio.run_process(
            [str(python), str(HERE / script), *args], cwd=HERE, check=False
        )
    lines = result.stdout.decode(errors="replace").strip().splitlines()
    context = f"{script} exited {result.returncode}; stderr ends:\n{_tail(result.stderr)}"
    assert lines, f"no summary from {context}"
    summary: dict[str, Any] = json.loads(lines[-1])
    if "fatal" in summary:
        raise AssertionError(f"{summary['fatal']}\n{summary.get('traceback')}\n{context}")
    summary["stderr_tail"] = _tail(result.stderr, 2000)
    return summary


class PeerServer:
    """A server script running in the peers venv: its URL, and its stdout lines after it."""

    def __init__(self, process: Process, url: str) -> None:
        self.process = process
        self.url = url
        self._buffer = b""

    async def lines(self, count: int, timeout_s: float = 10.0) -> list[dict[str, Any]]:
        """The next ``count`` JSON lines the server printed."""
        assert self.process.stdout is not None
        found: list[dict[str, Any]] = []
        with anyio.fail_after(timeout_s):
            while len(found) < count:
                while b"\n" not in self._buffer:
                    self._buffer += await self.process.stdout.receive()
                line, self._buffer = self._buffer.split(b"\n", 1)
                found.append(json.loads(line))
        return found

    async def stop(self) -> list[dict[str, Any]]:
        """Stop the server; every JSON line it printed and nobody read yet."""
        assert self.process.stdout is not None
        with contextlib.suppress(ProcessLookupError):
            self.process.terminate()
        with anyio.fail_after(10):
            while True:
                try:
                    self._buffer += await self.process.stdout.receive()
                except (anyio.EndOfStream, anyio.ClosedResourceError):
                    break
        lines = self._buffer.decode(errors="replace").splitlines()
        self._buffer = b""
        return [json.loads(line) for line in lines if line.strip()]


@asynccontextmanager
async def peer_server(script: str, *args: str) -> AsyncIterator[PeerServer]:
    """Start ``tests/peers/<script>`` in the peers venv; its first stdout line is its URL."""
    python = peers_python()
    process = await anyio.open_process(
        [str(python), str(HERE / script), *args], cwd=HERE, stderr=None
    )
    try:
        assert process.stdout is not None
        buffer = b""
        with anyio.fail_after(30):
            while b"\n" not in buffer:
                buffer += await process.stdout.receive()
        first, rest = buffer.split(b"\n", 1)
        server = PeerServer(process, first.decode().strip())
        server._buffer = rest
        yield server
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        with anyio.move_on_after(5):
            await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()

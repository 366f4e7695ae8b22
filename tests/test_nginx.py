"""The shipped nginx configuration (examples/deploy/nginx.conf), run by a real nginx in front
of two ``voiceagent phone`` processes: its upstream ports, listen port, certificate and log
paths filled in, nothing else changed. Calls go through it over TLS (a self-signed
certificate the caller trusts): with ``TWILIO_AUTH_TOKEN`` and ``--public-url`` naming the
nginx address, a signed call is served and an unsigned one refused (403); calls spread over
both processes; one process drained, the next calls go to the other.

nginx or openssl missing: skipped saying why, or failed under CI (tests/ci_env.py)."""

from __future__ import annotations

import itertools
import re
import shutil
import signal
import ssl
import subprocess
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx2
import pytest
from ci_env import missing
from test_phone_call import SAFETY_S, played
from test_phone_workers import ROUNDS, Fleet, fleet
from websockets.exceptions import InvalidStatus

from voiceagent.adapters.phone_server import twilio_signature
from voiceagent.testing.twilio import TwilioCaller

CONF = Path(__file__).resolve().parents[1] / "examples" / "deploy" / "nginx.conf"
TOKEN = "nginx-test-token"


def _require(name: str, fallback: str) -> str:
    path = shutil.which(name) or (fallback if Path(fallback).exists() else None)
    if path is None:
        reason = f"{name} is not installed (Debian package {name}): the nginx test needs it"
        missing(reason)
    return path


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def filled_in(conf: str, upstreams: list[int], port: int, folder: Path) -> str:
    """The shipped file with this test's ports and paths: each change is checked to apply."""
    lines = [f"        server 127.0.0.1:{p};" for p in upstreams]
    replacements = [
        (r"(?m)^        server 127\.0\.0\.1:8080;\n        server 127\.0\.0\.1:8081;$",
         "\n".join(lines)),
        (r"listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;"),
        (r"ssl_certificate     \S+;", f"ssl_certificate     {folder / 'cert.pem'};"),
        (r"ssl_certificate_key \S+;", f"ssl_certificate_key {folder / 'key.pem'};"),
        (r"access_log \S+;", f"access_log {folder / 'access.log'};"),
        (r"(?m)^http \{$", "http {\n" + "".join(
            f"    {kind}_temp_path {folder / kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))),
    ]  # fmt: skip
    for pattern, replacement in replacements:
        conf, count = re.subn(pattern, replacement, conf)
        assert count == 1, f"the shipped nginx.conf no longer has {pattern!r}"
    return conf


@dataclass
class Proxy:
    port: int
    cert: Path
    access_log: Path

    @property
    def public_url(self) -> str:
        return f"wss://127.0.0.1:{self.port}"


def _certificate(folder: Path) -> Path:
    openssl = _require("openssl", "/usr/bin/openssl")
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem"),
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)  # fmt: skip
    return folder / "cert.pem"


@asynccontextmanager
async def nginx(folder: Path, port: int, upstreams: list[int]) -> AsyncIterator[Proxy]:
    """A foreground nginx on ``port`` running the shipped file, everything in ``folder``."""
    binary = _require("nginx", "/usr/sbin/nginx")
    conf = folder / "nginx.conf"
    conf.write_text(filled_in(CONF.read_text(), upstreams, port, folder))
    cert = folder / "cert.pem"
    trusting = ssl.create_default_context(cafile=cert)
    command = [binary, "-p", str(folder), "-c", str(conf), "-e", str(folder / "error.log"),
               "-g", f"daemon off; pid {folder / 'nginx.pid'};"]  # fmt: skip
    checked = await anyio.run_process([*command, "-t"], check=False)  # the file is valid
    assert checked.returncode == 0, checked.stderr.decode() + (folder / "error.log").read_text()
    async with await anyio.open_process(command) as process:
        try:
            with anyio.fail_after(SAFETY_S):
                while True:  # up once /health answers through it
                    try:
                        async with httpx2.AsyncClient(verify=trusting) as client:
                            response = await client.get(f"https://127.0.0.1:{port}/health")
                        if response.status_code == 200:
                            break
                    except httpx2.TransportError:
                        pass
                    assert process.returncode is None, (folder / "error.log").read_text()
                    await anyio.sleep(0.1)
            yield Proxy(port, cert, folder / "access.log")
        finally:
            process.send_signal(signal.SIGQUIT)  # nginx's graceful stop
            with anyio.move_on_after(SAFETY_S):
                await process.wait()
            if process.returncode is None:
                process.kill()


@asynccontextmanager
async def deployment(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Proxy, list[Fleet]]]:
    """nginx on a free port in front of two phone processes signing over its address."""
    monkeypatch.setenv("SSL_CERT_FILE", str(_certificate(folder)))  # the caller trusts it
    port = _free_port()
    public = ["--public-url", f"wss://127.0.0.1:{port}"]
    async with AsyncExitStack() as stack:
        phones = [
            await stack.enter_async_context(
                fleet(*public, workers=1, env={"TWILIO_AUTH_TOKEN": TOKEN})
            )
            for _ in range(2)
        ]
        proxy = await stack.enter_async_context(nginx(folder, port, [p.port for p in phones]))
        yield proxy, phones


def _signed(proxy: Proxy) -> dict[str, str]:
    return {"X-Twilio-Signature": twilio_signature(TOKEN, f"{proxy.public_url}/twilio")}


async def _signed_call(proxy: Proxy) -> TwilioCaller:
    caller = TwilioCaller(f"{proxy.public_url}/twilio", headers=_signed(proxy))
    async with caller:
        with anyio.fail_after(SAFETY_S):
            await caller.wait_for(lambda: len(played(caller)) >= 1)  # the greeting
    return caller


def _served_by(phones: list[Fleet], caller: TwilioCaller) -> int | None:
    for n, phone in enumerate(phones):
        if any(f"{caller.call_sid} call started" in line for line in phone.stderr):
            return n
    return None


async def _until_served(phones: list[Fleet], callers: list[TwilioCaller]) -> None:
    """Until each call's start is in some process's log (it is written as the call starts)."""
    with anyio.fail_after(SAFETY_S):
        for _ in itertools.count():
            if all(_served_by(phones, c) is not None for c in callers):
                return
            await anyio.sleep(0.05)


async def test_signed_calls_pass_through_nginx_to_both_processes_unsigned_ones_do_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with deployment(tmp_path, monkeypatch) as (proxy, phones):
        callers: list[TwilioCaller] = []
        for _ in range(ROUNDS):
            caller = await _signed_call(proxy)
            callers.append(caller)
            await _until_served(phones, [caller])
            if {_served_by(phones, c) for c in callers} == {0, 1}:
                break
        with pytest.raises(InvalidStatus) as unsigned:
            async with TwilioCaller(f"{proxy.public_url}/twilio"):
                pass
        wrong = {"X-Twilio-Signature": twilio_signature("wrong", f"{proxy.public_url}/twilio")}
        with pytest.raises(InvalidStatus) as forged:
            async with TwilioCaller(f"{proxy.public_url}/twilio", headers=wrong):
                pass
    assert {_served_by(phones, c) for c in callers} == {0, 1}
    assert all(c.protocol_errors == [] and len(played(c)) >= 1 for c in callers)
    assert unsigned.value.response.status_code == 403
    assert forged.value.response.status_code == 403
    assert sum(" 101 " in line for line in proxy.access_log.read_text().splitlines()) == len(
        callers
    )


async def test_a_draining_process_gets_no_new_calls_the_other_takes_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with deployment(tmp_path, monkeypatch) as (proxy, phones):
        draining = phones[0]
        draining.process.send_signal(signal.SIGTERM)  # a rolling restart takes it out
        with anyio.fail_after(SAFETY_S):
            await draining.process.wait()
        callers = [await _signed_call(proxy) for _ in range(4)]
        await _until_served(phones, callers)
    assert [_served_by(phones, c) for c in callers] == [1, 1, 1, 1]
    assert all(c.protocol_errors == [] and len(played(c)) >= 1 for c in callers)

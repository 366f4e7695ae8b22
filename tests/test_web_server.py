"""The browser page's server over real sockets, without a browser: its files, the origin
check on its websocket, and what a page may send (bad messages counted and skipped)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from voiceagent.adapters.web_server import WebServer
from voiceagent.adapters.web_transport import INPUT_RATE, WebTransport

SAFETY_S = 20.0
ALLOWED = "https://app.example.com"


class Rig:
    def __init__(self) -> None:
        self.heard: list[bytes | str] = []
        self.transports: list[WebTransport] = []
        self.typed = anyio.Event()  # a typed line was heard
        self.server = WebServer(self.run_page, output_rate=24000, port=0,
                                allow_origins=[ALLOWED])  # fmt: skip

    async def run_page(self, transport: WebTransport) -> None:
        """A page's session that only listens: what it heard is kept."""
        self.transports.append(transport)
        async for item in transport.incoming():
            self.heard.append(item)
            if isinstance(item, str):
                self.typed.set()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    def socket(self, origin: str | None = None) -> connect:
        url = f"ws://127.0.0.1:{self.server.port}/ws"
        return connect(url, origin=origin or self.origin, close_timeout=1)  # type: ignore[arg-type]


@asynccontextmanager
async def web_rig() -> AsyncIterator[Rig]:
    rig = Rig()
    await rig.server.start()
    try:
        yield rig
    finally:
        await rig.server.aclose()


async def _get(url: str) -> tuple[int, str, str]:
    """(status, content type, text) of a plain GET."""

    def fetch() -> tuple[int, str, str]:
        try:
            with urllib.request.urlopen(url, timeout=SAFETY_S) as answer:
                return answer.status, answer.headers["Content-Type"], answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.headers["Content-Type"], error.read().decode()

    return await anyio.to_thread.run_sync(fetch)


async def _until(check: Callable[[], bool]) -> None:
    """Until ``check()`` holds (another task's socket read makes it so)."""
    with anyio.fail_after(SAFETY_S):
        while not check():  # noqa: ASYNC110 (nothing to wait on but the other task)
            await anyio.sleep(0.005)


async def _first_json(ws: ClientConnection) -> dict[str, object]:
    with anyio.fail_after(SAFETY_S):
        while True:
            message = await ws.recv()
            if isinstance(message, str):
                data: dict[str, object] = json.loads(message)
                return data


async def test_the_page_and_its_modules_are_served_with_their_types() -> None:
    async with web_rig() as rig:
        status, kind, page = await _get(rig.origin + "/")
        assert status == 200 and kind.startswith("text/html")
        assert 'id="talk"' in page and "app.js" in page
        for module in ("/app.js", "/lanes.js", "/capture-worklet.js", "/player-worklet.js"):
            status, kind, text = await _get(rig.origin + module)
            assert status == 200 and kind.startswith("text/javascript"), module
        assert "registerProcessor" in text
        for missing in ("/nope.js", "/%2e%2e/pyproject.toml", "/web.py"):
            assert (await _get(rig.origin + missing))[0] == 404, missing
        status, kind, health = await _get(rig.origin + "/health")
        assert status == 200 and json.loads(health)["status"] == "ok"


async def test_a_websocket_from_another_origin_is_refused() -> None:
    async with web_rig() as rig:
        for origin in ("http://evil.example", f"http://127.0.0.1:{rig.server.port + 1}"):
            with pytest.raises(InvalidStatus) as refused:
                async with rig.socket(origin):
                    pass
            assert refused.value.response.status_code == 403
        assert rig.server.refused[403] == 2
        assert rig.server.pages_served == 0


async def test_a_websocket_without_an_origin_is_refused() -> None:
    async with web_rig() as rig:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"ws://127.0.0.1:{rig.server.port}/ws"):
                pass
        assert refused.value.response.status_code == 403


@pytest.mark.parametrize("origin", ["own", "localhost", ALLOWED], ids=["own", "localhost",
                                                                       "allowed"])  # fmt: skip
async def test_the_pages_own_origin_and_the_allowed_ones_may_talk(origin: str) -> None:
    async with web_rig() as rig:
        origin = {"own": rig.origin, "localhost": f"http://localhost:{rig.server.port}"}.get(
            origin, origin
        )
        async with rig.socket(origin) as ws:
            ready = await _first_json(ws)
        assert ready == {"type": "ready", "output_rate": 24000, "input_rate": INPUT_RATE,
                         "frame_ms": 20}  # fmt: skip


async def test_malformed_frames_are_counted_and_skipped_and_good_ones_heard() -> None:
    frame_48k = b"\x01\x00" * 960  # 20 ms at 48 kHz
    async with web_rig() as rig:
        async with rig.socket() as ws:
            await _first_json(ws)
            await ws.send(frame_48k)  # audio before the hello
            await ws.send(json.dumps({"type": "hello", "sample_rate": 48000}))
            await ws.send(frame_48k)
            await ws.send(b"\x01\x00\x02")  # an odd number of bytes
            await ws.send(frame_48k + frame_48k)  # 40 ms: more than a frame
            await ws.send("{not json")
            await ws.send(json.dumps([1, 2]))
            await ws.send(json.dumps({"type": "shout"}))
            await ws.send(json.dumps({"type": "played", "position": -5}))
            await ws.send(json.dumps({"type": "hello", "sample_rate": 8000}))  # a second one
            await ws.send("x" * 20_000)  # a control message too large
            await ws.send(frame_48k)
            await ws.send(json.dumps({"type": "text", "text": "  hello\nthere "}))
            with anyio.fail_after(SAFETY_S):
                await rig.typed.wait()
            _, _, health = await _get(rig.origin + "/health")
    assert rig.heard[-1] == "hello there"
    (transport,) = rig.transports
    assert json.loads(health)["malformed"] == dict(transport.malformed)
    assert dict(transport.malformed) == {
        "before_hello": 1, "odd_size": 1, "too_large": 2, "invalid": 3, "unknown": 1,
        "second_hello": 1,
    }  # fmt: skip
    assert transport.frames == 2 and transport.page_rate == 48000
    audio = b"".join(item for item in rig.heard if isinstance(item, bytes))
    # two 20 ms frames at 48 kHz, heard at 16 kHz (the resampler may hold a few back)
    assert 0 < len(audio) // 2 <= 2 * INPUT_RATE // 50


async def test_a_page_flooding_audio_is_closed() -> None:
    frame = b"\x00\x00" * 320  # 20 ms at 16 kHz
    async with web_rig() as rig:
        async with rig.socket() as ws:
            await _first_json(ws)
            await ws.send(json.dumps({"type": "hello", "sample_rate": 16000}))
            with anyio.fail_after(SAFETY_S):
                try:
                    for _ in range(1000):  # 20 s of audio at once
                        await ws.send(frame)
                    await ws.wait_closed()
                except Exception:
                    pass
            assert ws.close_code == 1008
        (transport,) = rig.transports
        assert transport.refusal is not None and transport.dropped_ms > 0


GREETING = "Hello there, thank you for trying the page, it is good to have you with us today."


async def test_the_page_says_how_much_played_and_that_is_what_was_heard() -> None:
    """The page confirms nothing of a cut segment; its report of where the clear stopped it
    is the part heard, exactly (the estimate made at the barge-in is corrected to it)."""
    from voiceagent.agent import Agent
    from voiceagent.llm import ElectronClient
    from voiceagent.session import Session
    from voiceagent.testing.tts import TestTTS

    played_at = 12_000  # samples the "page" says it played: half a second at 24 kHz
    sessions: list[Session] = []
    transports: list[WebTransport] = []

    async def run_page(transport: WebTransport) -> None:
        agent = Agent(instructions="Answer.", greeting=GREETING)
        llm = ElectronClient("http://127.0.0.1:9/v1")  # never asked: no user turn
        session = Session(agent, transport, None, TestTTS(ms_per_char=40.0), None, llm=llm,
                          idle_timeout_s=None)  # fmt: skip
        sessions.append(session)
        transports.append(transport)
        await session.run()

    server = WebServer(run_page, output_rate=24000, port=0)
    await server.start()
    try:
        origin = f"http://127.0.0.1:{server.port}"
        async with connect(f"ws://127.0.0.1:{server.port}/ws", origin=origin) as ws:  # type: ignore[arg-type]
            received, segments = 0, []
            with anyio.fail_after(SAFETY_S):
                while received < 24_000:  # a second of the greeting has come
                    message = await ws.recv()
                    if isinstance(message, bytes):
                        received += len(message) // 2
                    elif json.loads(message)["type"] == "segment":
                        segments.append(json.loads(message))
            await ws.send(json.dumps({"type": "played", "position": played_at}))
            (transport,), (session,) = transports, sessions
            await _until(lambda: transport.speaker.position == played_at)
            session.interrupt()  # the user talked over the greeting
            with anyio.fail_after(SAFETY_S):
                while (message := await ws.recv()) and (
                    isinstance(message, bytes) or json.loads(message)["type"] != "clear"
                ):
                    pass
            await ws.send(json.dumps({"type": "cleared", "position": played_at}))
            await _until(lambda: transport.speaker.clears_answered == 1)
            await _until(lambda: session.engine.last is not None)
    finally:
        await server.aclose()
    assert [s["at"] for s in segments] == [0]  # one segment, from the stream's start
    result = session.engine.last
    assert result is not None and result.timeline.trigger == "greeting"
    assert result.reason == "cancelled"
    heard = result.heard.split()
    assert heard and heard == GREETING.split()[: len(heard)] and len(heard) < len(GREETING.split())
    assert transport.speaker.clears == 1 and transport.speaker.confirmed == []
    # what the page said played is what counts: the estimate made at the cut was no less
    assert transport.speaker.heard_correction >= 0
    assert "barge_in" in [event.kind for event in result.timeline.events]

"""The Pulse fake on its own, seen by a bare websockets client: wire format, validation,
transcription by table or whisper, the CLI and the lazy export."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from pulse_rig import BOOKING, WEATHER, needs_espeak, padded, spoken, table_server
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from voiceagent import audio
from voiceagent.testing.pulse import PulseServer, UtteranceTable, whisper_available


async def _exchange(url: str, query: str, pcm: bytes, control: str) -> list[dict[str, object]]:
    received: list[dict[str, object]] = []
    async with connect(f"{url}?model=pulse&{query}") as ws:
        for start in range(0, len(pcm), 640):
            await ws.send(pcm[start : start + 640])
        await ws.send(json.dumps({"type": control}))
        try:
            async for message in ws:
                received.append(json.loads(message))
        except ConnectionClosed:
            pass
    return received


@needs_espeak
async def test_wire_messages_have_pulses_shape() -> None:
    async with table_server() as server:
        got = await _exchange(
            server.url, "vad_events=true", padded(spoken(WEATHER), after_ms=100), "close_stream"
        )
    assert got[0] == {"type": "speech_started", "timestamp": pytest.approx(0.2, abs=0.1)}
    last = got[-1]
    assert last["type"] == "transcription" and last["is_final"] and last["is_last"]
    assert last["transcript"] == WEATHER and last["language"] == "en"
    partial = next(m for m in got if m.get("type") == "transcription")
    assert partial["is_final"] is False and "session_id" in partial


async def test_bad_configuration_gets_an_error_frame_then_a_close() -> None:
    async with PulseServer(transcribe="table") as server:
        async with connect(f"{server.url}?model=pulse&sample_rate=4000&encoding=linear16") as ws:
            message = json.loads(await ws.recv())
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 1003
    assert message["type"] == "error" and "8000, 16000, 22050" in message["message"]


@needs_espeak
def test_table_knows_its_utterances_and_not_others() -> None:
    table = UtteranceTable(unknown="<unknown>")
    table.add(spoken(WEATHER), WEATHER)
    quieter = audio.float32_to_pcm(audio.pcm_to_float32(spoken(WEATHER)) * 0.3)
    assert table.lookup(padded(quieter)) == (WEATHER, 1.0)
    assert table.lookup(spoken(BOOKING)) == ("<unknown>", 1.0)
    assert table.lookup(audio.silence(16000)) is None
    half = spoken(WEATHER)[: len(spoken(WEATHER)) // 4 * 2]
    text, fraction = table.lookup(half) or ("", 0.0)
    assert text == WEATHER and 0.3 < fraction < 0.7


@needs_espeak
@pytest.mark.skipif(not whisper_available(), reason="offline whisper (the offline extra) missing")
async def test_whisper_transcribes_speech_it_was_never_told() -> None:
    async with PulseServer(transcribe="whisper", eou_timeout_ms=300) as server:
        assert server.transcriber_name == "whisper"
        got = await _exchange(server.url, "", padded(spoken(WEATHER)), "close_stream")
    finals = [m["transcript"] for m in got if m.get("is_final")]
    assert "weather" in str(finals[0]).lower()


def test_cli_prints_its_url_first() -> None:
    command = [sys.executable, "-m", "voiceagent.testing.pulse", "--port", "0", "--fast"]
    with subprocess.Popen([*command, "--transcribe", "table"], stdout=subprocess.PIPE) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline().decode().strip()
        finally:
            proc.terminate()
    assert line.startswith("ws://127.0.0.1:") and line.endswith("/waves/v1/stt/live")


def test_runs_in_a_thread_and_is_exported_lazily() -> None:
    import voiceagent.testing

    assert voiceagent.testing.PulseServer is PulseServer
    with PulseServer.running_in_thread(transcribe="table") as server:
        assert server.url.startswith("ws://127.0.0.1:")

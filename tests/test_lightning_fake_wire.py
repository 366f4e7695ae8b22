"""The Lightning fake answers in the shape Smallest AI's SDK documents: the server's own id in
``request_id``, the client's in ``external_request_id``, ``complete`` then a close; plus the
messages third-party clients send (cancel, continuations, JSON keepalives)."""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx2
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK

from voiceagent.testing.lightning import LightningServer, voices
from voiceagent.testing.lightning.wire import idle_timeout_frame

CONFIG = {"voice_id": "sophia", "model": "lightning_v3.1", "language": "en", "sample_rate": 24000}


async def _send(ws: ClientConnection, **fields: Any) -> None:
    await ws.send(json.dumps({**CONFIG, **fields}))


async def _frames_until(ws: ClientConnection, status: str) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    with anyio.fail_after(10):
        while not frames or frames[-1]["status"] != status:
            frames.append(json.loads(await ws.recv()))
    return frames


async def _one_request(server: LightningServer, **extra: Any) -> list[dict[str, Any]]:
    async with connect(server.ws_url) as ws:
        await _send(ws, text="Hi.", flush=True, complete_backoff_ms=0, **extra)
        return await _frames_until(ws, "complete")


async def test_frames_carry_a_server_uuid_and_the_clients_id_as_external_request_id() -> None:
    async with LightningServer(voice="synthetic") as server:
        async with connect(server.ws_url) as ws:
            await _send(ws, text="Hi.", flush=True, complete_backoff_ms=0, request_id="mine-1")
            frames = await _frames_until(ws, "complete")
            with anyio.fail_after(10), pytest.raises(ConnectionClosedOK):
                await ws.recv()  # complete is terminal: the server closes
    assert {f["external_request_id"] for f in frames} == {"mine-1"}
    (server_id,) = {f["request_id"] for f in frames}
    assert server_id != "mine-1" and len(server_id) == 36  # a UUID
    assert server.requests[0].server_ids == [server_id]


async def test_without_a_client_id_external_request_id_is_omitted() -> None:
    async with LightningServer(voice="synthetic") as server:
        frames = await _one_request(server)
    assert all("external_request_id" not in f for f in frames)
    assert all(len(f["request_id"]) == 36 for f in frames)


async def test_the_old_echo_shape_and_keep_open_remain_options() -> None:
    server = LightningServer(voice="synthetic", response_ids="echo", close_after_complete=False)
    async with server, connect(server.ws_url) as ws:
        for rid in ("a", "b"):  # both on one socket: it stayed open
            await _send(ws, text="Hi.", flush=True, complete_backoff_ms=0, request_id=rid)
            frames = await _frames_until(ws, "complete")
            assert {f["request_id"] for f in frames} == {rid}
            assert all("external_request_id" not in f for f in frames)
    assert server.connections == 1


async def test_uuid_only_mode_names_no_client_id() -> None:
    async with LightningServer(voice="synthetic", response_ids="uuid-only") as server:
        frames = await _one_request(server, request_id="mine")
    assert all("external_request_id" not in f and f["request_id"] != "mine" for f in frames)


async def test_cancel_request_stops_the_audio_and_frees_the_account_slot() -> None:
    long = "A long answer that keeps going for a while. " * 4
    server = LightningServer(voice="synthetic", close_after_complete=False, pace=1.0)
    async with server, connect(server.ws_url) as ws:
        await _send(ws, text=long, flush=True, request_id="cut")
        first = json.loads(await ws.recv())
        await _send(ws, text="", request_id="cut", cancel_request=True)
        server.pace = 0.0
        await _send(ws, text="Next.", flush=True, complete_backoff_ms=0, request_id="next")
        frames = await _frames_until(ws, "complete")
    cut, nxt = server.requests
    assert first["status"] == "chunk" and first["external_request_id"] == "cut"
    assert cut.status == "cancelled" and cut.samples < len(voices.synthetic(long, 24000)) // 2
    assert nxt.status == "complete"  # not refused: the cancel freed the one slot
    assert [f["external_request_id"] for f in frames if f["status"] == "complete"] == ["next"]
    after = [f for f in frames if f.get("external_request_id") == "cut"]
    assert len(after) + 1 <= cut.chunks  # only chunks already on their way, no complete


async def test_a_continuation_context_releases_at_sentence_ends_and_completes_once() -> None:
    async with LightningServer(voice="synthetic") as server, connect(server.ws_url) as ws:
        await _send(ws, text="Hello there. ", context_id="ctx1", **{"continue": True})
        released = json.loads(await ws.recv())  # audio before the context ended
        await _send(ws, text="How are ", context_id="ctx1", **{"continue": True})
        await _send(ws, text="you?", context_id="ctx1", **{"continue": True})
        await _send(ws, text="", context_id="ctx1", complete_backoff_ms=0, **{"continue": False})
        frames = [released, *await _frames_until(ws, "complete")]
    (request,) = server.requests
    assert request.context_id == "ctx1" and request.pieces == ["Hello there. ", "How are you?"]
    chunk_ids = list(dict.fromkeys(f["request_id"] for f in frames if f["status"] == "chunk"))
    assert len(chunk_ids) == 2 and chunk_ids == request.server_ids  # one server id per release
    assert [f["status"] for f in frames].count("complete") == 1
    assert frames[-1]["request_id"] == chunk_ids[-1]


async def test_max_buffer_delay_ms_releases_a_fragment_without_a_sentence_end() -> None:
    async with LightningServer(voice="synthetic") as server, connect(server.ws_url) as ws:
        await _send(ws, text="Hello", context_id="c", max_buffer_delay_ms=50, **{"continue": True})
        early = json.loads(await ws.recv())  # before the context ended
        await _send(ws, text="", context_id="c", complete_backoff_ms=0, **{"continue": False})
        await _frames_until(ws, "complete")
    assert early["status"] == "chunk" and server.requests[0].pieces == ["Hello"]


async def test_a_json_keepalive_is_not_a_request() -> None:
    async with LightningServer(voice="synthetic") as server, connect(server.ws_url) as ws:
        await ws.send(json.dumps({"text": " ", **CONFIG}))
        await _send(ws, text="Hi.", flush=True, complete_backoff_ms=0, request_id="r")
        frames = await _frames_until(ws, "complete")
    assert server.keepalives == 1 and [r.request_id for r in server.requests] == ["r"]
    assert server.last_keepalive == {"text": " ", **CONFIG}
    assert {f.get("external_request_id") for f in frames} == {"r"}


async def test_the_idle_timeout_sends_the_sdks_error_frame_then_closes() -> None:
    # smallestai 5.x, waves/tts/client.py ("Connection timeout"): the server closes an idle
    # socket with {"status": "error", "message": "Connection timed out after 60 seconds of
    # inactivity"}; the 60 is the ?timeout=N in force. Nothing else: no code, no ids.
    async with LightningServer(voice="synthetic") as server:
        async with connect(server.ws_url + "?timeout=0.2") as ws:
            error = json.loads(await ws.recv())
            with anyio.fail_after(10), pytest.raises(ConnectionClosed):
                await ws.recv()
    assert error == {
        "status": "error",
        "message": "Connection timed out after 0.2 seconds of inactivity",
    }
    assert server.idle_closes == 1


def test_the_idle_timeout_frame_at_the_default_is_the_sdks_word_for_word() -> None:
    sdk = {"status": "error", "message": "Connection timed out after 60 seconds of inactivity"}
    assert idle_timeout_frame(60.0) == sdk
    assert idle_timeout_frame(120)["message"] == (
        "Connection timed out after 120 seconds of inactivity"
    )


async def test_complete_backoff_ms_above_10000_is_refused() -> None:
    async with LightningServer(voice="synthetic") as server, connect(server.ws_url) as ws:
        await _send(ws, text="Hi.", flush=True, complete_backoff_ms=10001, request_id="r")
        error = json.loads(await ws.recv())
    assert error["status"] == "error" and "complete_backoff_ms" in error["message"]
    assert server.requests == []


async def test_http_output_format_defaults_to_pcm() -> None:
    async with LightningServer(voice="synthetic") as server, httpx2.AsyncClient() as client:
        body = {"text": "Raw.", "sample_rate": 8000}
        response = await client.post(server.http_url, json=body)
    assert response.headers["content-type"] == "audio/pcm"
    assert response.content == voices.synthetic("Raw.", 8000)


async def test_word_timestamps_are_interleaved_with_chunks_when_asked() -> None:
    async with LightningServer(voice="synthetic", chunk_ms=20) as server:
        frames = await _one_request(server, request_id="w", word_timestamps=True)
        plain = await _one_request(server, request_id="p")
    words = [f for f in frames if f["status"] == "word_timestamp"]
    assert [(w["data"]["id"], w["data"]["word"]) for w in words] == [(0, "Hi.")]
    assert words[0]["external_request_id"] == "w" and words[0]["data"]["start"] == 0.0
    assert words[0]["data"]["end"] == pytest.approx(3 * voices.samples_per_char(24000) / 24000)
    assert frames.index(words[0]) < max(i for i, f in enumerate(frames) if f["status"] == "chunk")
    assert all(f["status"] != "word_timestamp" for f in plain)


def test_the_command_line_sets_the_old_behaviours() -> None:
    from voiceagent.testing.lightning.cli import build_parser, server_from_args

    args = build_parser().parse_args(["--response-ids", "echo", "--keep-open", "--fast"])
    server = server_from_args(args)
    assert (server.response_ids, server.close_after_complete) == ("echo", False)
    default = server_from_args(build_parser().parse_args([]))
    assert (default.response_ids, default.close_after_complete) == ("server", True)

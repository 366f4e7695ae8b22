"""Clients nobody here wrote, against our fakes: LiveKit's ``livekit-plugins-smallestai``
1.8.9 and pipecat 1.14's ``services/smallest`` (TTS and STT). A fake that only agrees with
our own adapters proves nothing; these are the best evidence of the real wire we have.

The clients live in ``.venv/peers`` (``make peers``; never in the project's venv): each
scenario is a driver script in tests/peers/ run there as a subprocess against a fake served
by this test's event loop. The driver records, inside its own process, every message the
client sent and got (tests/peers/wiretap.py); the tests assert on that, on what the client
made of the answers (audio, transcripts, errors) and on what the fake recorded.
Without the peers venv the tests skip and say why; under CI (any ``CI`` but empty, 0 or
false: tests/ci_env.py) they fail instead.
"""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any

import pytest
from peers.rig import peers_python, run_peer
from pulse_rig import WEATHER, needs_espeak, padded, spoken

from voiceagent.testing.lightning import LightningServer, voices
from voiceagent.testing.pulse import PulseServer

RATE = 24000
# LiveKit's phrases (tests/peers/livekit_tts.py): one SynthesizeStream per segment.
LIVEKIT_SEGMENTS = [
    "Hello there. This is LiveKit speaking to a Lightning fake.",
    "And a second segment, on the same TTS.",
]


@pytest.fixture(autouse=True)
def _peers_installed() -> None:
    peers_python()  # skip (or, under CI, fail) before starting any server


def _synthetic_bytes(pieces: list[str]) -> int:
    """What the fake's synthetic voice sends for the pieces it voiced."""
    return sum(len(voices.synthetic(piece, RATE)) for piece in pieces)


def _statuses(summary: dict[str, Any]) -> list[str]:
    return [m.get("status", "?") for m in summary["wire"]["received"] if isinstance(m, dict)]


def _context_ids(sent: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(m["context_id"] for m in sent if "context_id" in m))


# -- LiveKit TTS -------------------------------------------------------------------------


async def test_livekit_tts_continuations_speak_each_segment_once() -> None:
    # livekit tts.py: SynthesizeStream, use_continuations=True (the default): fragments under
    # a context_id with continue:true, closed by {"text":"","continue":false}; no flush.
    # The fake's defaults (complete 4 s after the audio, then a close): LiveKit ends the
    # segment 0.6 s after the last frame and never reuses that socket. It closes that socket
    # and sends the next segment on a new one at once: the fake frees the first request's
    # account slot only when its handler sees the close, after the client's close returned,
    # so with the one-request account limit about 1 run in 12 refused the second segment
    # (concurrency_limit). LiveKit does not queue; the limit is not tested here.
    async with LightningServer(voice="synthetic", account_limit=0) as server:
        summary = await run_peer("livekit_tts.py", "stream", "--ws-url", server.ws_url)
    sent = summary["wire"]["sent"]
    assert summary["tts_errors"] == [], summary["stderr_tail"]
    assert [s["error"] for s in summary["segments"]] == [None, None]
    contexts = _context_ids(sent)
    assert len(contexts) == 2 and all("flush" not in m for m in sent)
    for context in contexts:
        mine = [m for m in sent if m.get("context_id") == context]
        assert [m["continue"] for m in mine] == [True] * (len(mine) - 1) + [False]
        assert mine[-1]["text"] == ""
    requests = server.requests
    assert [r.context_id for r in requests] == contexts  # type: ignore[attr-defined]
    assert ["".join(r.pieces) for r in requests] == LIVEKIT_SEGMENTS
    for segment, request in zip(summary["segments"], requests, strict=True):
        assert segment["sample_rate"] == RATE
        assert segment["bytes"] == _synthetic_bytes(request.pieces)  # whole, and only once


async def test_livekit_tts_legacy_mode_flushes_and_survives_the_close_after_complete() -> None:
    # livekit tts.py, use_continuations=False: continue/flush, waits for `complete`, then
    # puts the socket back in its pool. The server closes after `complete` (SDK
    # tts_response_message.py), so the next segment's first try hits a closed socket and
    # LiveKit retries on a new one (max_retry 3, LiveKit's default): audio still once.
    async with LightningServer(voice="synthetic", complete_backoff_default_ms=300) as server:
        summary = await run_peer(
            "livekit_tts.py", "legacy", "--ws-url", server.ws_url, "--max-retry", "3"
        )
    sent = summary["wire"]["sent"]
    assert [s["error"] for s in summary["segments"]] == [None, None], summary["stderr_tail"]
    assert all("context_id" not in m and "flush" in m for m in sent)
    flushes = [m["text"] for m in sent if m["flush"]]
    assert flushes == [""] * len(flushes)
    # each try of a segment ends with one flush: a retry (the socket closed after the first
    # segment's complete) re-sends the whole segment, and LiveKit reported it as an error
    assert len(flushes) - 2 == len(summary["tts_errors"]) == len(summary["wire"]["connects"]) - 1
    assert _statuses(summary).count("complete") == 2
    # the first try of segment 2 may reach the fake before its close: voiced, never heard
    last_try = {"".join(r.pieces): r for r in server.requests if r.pieces}
    assert list(last_try) == LIVEKIT_SEGMENTS
    for segment, text in zip(summary["segments"], LIVEKIT_SEGMENTS, strict=True):
        assert segment["bytes"] == _synthetic_bytes(last_try[text].pieces)  # heard once


async def test_livekit_tts_barge_in_sends_cancel_request_and_the_fake_cancels() -> None:
    # livekit tts.py _try_cancel_context: a stream closed before its context was finalized
    # sends {...base payload, "context_id", "cancel_request": true} (no text).
    async with LightningServer(voice="synthetic", pace=1.0) as server:
        summary = await run_peer("livekit_tts.py", "barge", "--ws-url", server.ws_url)
    (segment,) = summary["segments"]
    assert segment["closed_early"] and segment["error"] is None
    sent = summary["wire"]["sent"]
    (context,) = _context_ids(sent)
    assert sent[-1] == {**sent[-1], "context_id": context, "cancel_request": True}
    assert "text" not in sent[-1] and all(m["continue"] for m in sent[:-1])
    (request,) = server.requests
    assert request.status == "cancelled"  # not synthesised as a flush
    full = voices.synthetic("".join(request.fragments), RATE)
    assert request.samples < len(full) // 2
    assert "complete" not in _statuses(summary)


async def test_livekit_tts_chunked_stream_over_http() -> None:
    # livekit tts.py ChunkedStream: POST {base_url}/tts, JSON with output_format "pcm",
    # no Accept header; the body is raw PCM at the asked rate.
    async with LightningServer(voice="synthetic") as server:
        base = server.http_url.removesuffix("/tts")
        args = ("http", "--ws-url", server.ws_url, "--base-url", base)
        summary = await run_peer("livekit_tts.py", *args)
    (segment,) = summary["segments"]
    assert segment["error"] is None and summary["tts_errors"] == []
    (request,) = server.requests
    assert request.transport == "http" and request.config["output_format"] == "pcm"
    assert request.config["sample_rate"] == RATE and segment["sample_rate"] == RATE
    assert segment["bytes"] == len(voices.synthetic(request.text, RATE))


# -- LiveKit STT -------------------------------------------------------------------------


def _weather_wav(path: Path) -> Path:
    pcm = padded(spoken(WEATHER), after_ms=1000)
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(16000)
        writer.writeframes(pcm)
    return path


@needs_espeak
async def test_livekit_stt_transcribes_and_its_keepalive_gets_pong(tmp_path: Path) -> None:
    # livekit stt.py: keepalive {"type":"keepalive"} every 5 s on /stt/live, "the server
    # answers with a pong that recv_task ignores"; an error frame instead raises and the
    # stream reconnects. end_input sends finalize then close_stream and reads to is_last.
    wav = _weather_wav(tmp_path / "weather.wav")
    async with PulseServer(transcribe="table", eou_timeout_ms=300) as server:
        server.table.add(spoken(WEATHER), WEATHER)
        base = server.url.replace("ws://", "http://").removesuffix("/stt/live")
        summary = await run_peer("livekit_stt.py", "--base-url", base, "--wav", str(wav))
    wire = summary["wire"]
    finals = [e["text"] for e in summary["events"] if e["type"] == "FINAL_TRANSCRIPT"]
    assert finals == [WEATHER]
    assert summary["stt_errors"] == [], summary["stderr_tail"]
    assert len(wire["connects"]) == 1  # never reconnected
    assert {"type": "keepalive"} in wire["sent"]
    assert wire["sent"][-2:] == [{"type": "finalize"}, {"type": "close_stream"}]
    pongs = [m for m in wire["received"] if m.get("type") == "pong"]
    assert len(pongs) == wire["sent"].count({"type": "keepalive"}) >= 1
    (connection,) = server.connections
    assert connection.query["model"] == "pulse" and connection.sent_of("error") == []
    assert [c["type"] for c in connection.control].count("keepalive") == len(pongs)
    assert connection.sent[-1]["is_last"] is True


# -- pipecat TTS -------------------------------------------------------------------------


async def test_pipecat_tts_speaks_each_turn_and_its_keepalive_is_not_a_request() -> None:
    # pipecat tts.py: run_tts sends each sentence under the turn's context_id with
    # continue:true, flush_audio closes it with {"text":"","continue":false};
    # _send_keepalive sends {"text":" ",voice_id,model,language} (every 30 s; 0.3 s here).
    # complete_backoff_ms is never sent: the fake's default is shortened so the second turn
    # does not meet the first one's account slot (the test after this one shows that meeting).
    async with LightningServer(voice="synthetic", complete_backoff_default_ms=300) as server:
        base = server.ws_url.removesuffix("/waves/v1/tts/live")
        summary = await run_peer("pipecat_tts.py", "--base-url", base)
        keepalives_seen = server.keepalives
    sent = summary["wire"]["sent"]
    assert summary["errors"] == [], summary["stderr_tail"]
    keepalives = [m for m in sent if "context_id" not in m]
    assert keepalives and all(m["text"] == " " and "continue" not in m for m in keepalives)
    assert keepalives_seen >= 1
    contexts = _context_ids(sent)
    assert len(contexts) == 2
    requests = server.requests
    assert [r.context_id for r in requests] == contexts  # type: ignore[attr-defined]
    for context, request in zip(contexts, requests, strict=True):
        mine = [m for m in sent if m.get("context_id") == context]
        assert mine[-1]["text"] == "" and mine[-1]["continue"] is False
        assert request.text == "".join(m["text"] for m in mine)
    turns = summary["turns"]
    assert [t["context_id"] for t in turns] == contexts
    for turn, request in zip(turns, requests, strict=True):
        assert turn["sample_rate"] == RATE
        assert turn["bytes"] == _synthetic_bytes(request.pieces)


async def test_pipecat_second_turn_within_the_default_backoff_meets_the_account_limit() -> None:
    # What the previous test avoids, as a report on pipecat against the documented defaults:
    # it never sends complete_backoff_ms, so the first context holds the account's one slot
    # for the default 4 s after its audio; the second turn, sent within that, is refused
    # (concurrency_limit) and pipecat voices nothing for it. Our adapter sends
    # complete_backoff_ms (lightning.py) and so does not meet this.
    async with LightningServer(voice="synthetic") as server:
        assert server.complete_backoff_default_ms == 4000.0 and server.account_limit == 1
        base = server.ws_url.removesuffix("/waves/v1/tts/live")
        summary = await run_peer("pipecat_tts.py", "--base-url", base)
        requests = server.requests
    assert [r.status for r in requests] == ["complete", "refused"]  # type: ignore[attr-defined]
    assert any("concurrency_limit" in error for error in summary["errors"])
    assert [t["context_id"] for t in summary["turns"]] == [requests[0].context_id]  # type: ignore[attr-defined]


# -- pipecat STT -------------------------------------------------------------------------


@needs_espeak
async def test_pipecat_stt_transcribes_finalizes_and_keeps_alive(tmp_path: Path) -> None:
    # pipecat stt.py: query-string config, binary PCM, {"type":"finalize"} on the VAD's stop;
    # its keepalive is 100 ms of silence as a binary frame (stt_service.py).
    wav = _weather_wav(tmp_path / "weather.wav")
    async with PulseServer(transcribe="table", eou_timeout_ms=300) as server:
        server.table.add(spoken(WEATHER), WEATHER)
        base = server.url.removesuffix("/waves/v1/stt/live")
        summary = await run_peer("pipecat_stt.py", "--base-url", base, "--wav", str(wav))
    wire = summary["wire"]
    assert summary["errors"] == [], summary["stderr_tail"]
    finals = [t["text"] for t in summary["transcripts"] if t["final"]]
    assert finals == [WEATHER]
    assert len(wire["connects"]) == 1 and wire["sent"] == [{"type": "finalize"}]
    assert wire["sent_binary_bytes"] > summary["audio_bytes"]  # the keepalive silence
    (connection,) = server.connections
    assert connection.sent_of("error") == [] and connection.control == [{"type": "finalize"}]
    finalized = [m for m in connection.sent_of("transcription") if m.get("from_finalize")]
    assert len(finalized) == 1


@needs_espeak
async def test_livekit_stt_sees_one_turn_per_utterance(tmp_path: Path) -> None:
    # livekit stt.py: speech_started/speech_ended are the turn's bounds ("END_OF_SPEECH
    # still follows the VAD"), and endpointing_timeout_ms defaults to 300 "so the server's
    # final lands before a VAD-driven agent commits the turn": the final comes inside it.
    wav = _weather_wav(tmp_path / "weather.wav")
    async with PulseServer(transcribe="table", eou_timeout_ms=300) as server:
        server.table.add(spoken(WEATHER), WEATHER)
        base = server.url.replace("ws://", "http://").removesuffix("/stt/live")
        args = ("--base-url", base, "--wav", str(wav), "--idle", "0.5")
        summary = await run_peer("livekit_stt.py", *args)
    kinds = [e["type"] for e in summary["events"]]
    utterance = kinds[: kinds.index("-- end_input --")]  # after 0.5 s of silence
    bounds = [k for k in utterance if k in ("START_OF_SPEECH", "END_OF_SPEECH", "FINAL_TRANSCRIPT")]
    assert bounds == ["START_OF_SPEECH", "FINAL_TRANSCRIPT", "END_OF_SPEECH"]

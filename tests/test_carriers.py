"""Each carrier's serializer: every message the carrier sends parses into the frame model,
what we build has exactly the carrier's field names (checked by its simulator's wire), Telnyx
reorders media, Exotel sends 320-byte multiples, and "/" detects the carrier (or --carrier)."""

from __future__ import annotations

import json
import random
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_phone_call import SAFETY_S, phone_rig, played
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from voiceagent import audio
from voiceagent.adapters import carriers
from voiceagent.adapters.carriers.frames import (
    Cleared,
    Connected,
    Dtmf,
    Mark,
    Media,
    Start,
    Stop,
    UnknownEvent,
)
from voiceagent.adapters.carriers.telnyx import Reorder
from voiceagent.adapters.phone_auth import twilio_signature
from voiceagent.agent import Agent
from voiceagent.testing import CarrierCaller
from voiceagent.testing.carriers import CALLER_CODECS, WIRES

GREETER = Agent(instructions="Answer.", greeting="Hello.")
PCM = audio.int16_to_pcm(__import__("numpy").arange(-8000, 8000, 50, dtype="int16"))  # 320 smp
ULAW = audio.ulaw_encode(PCM[:320])  # 160 samples


def _wire(carrier: str, codec: str | None = None) -> Any:
    return WIRES[carrier]("S1", "C1", "A1", {"customer": "42"}, codec or CALLER_CODECS[carrier])


def _parse(serializer: carriers.Serializer, message: dict[str, Any] | None) -> list[Any]:
    assert message is not None
    return serializer.parse(json.dumps(message))


@pytest.mark.parametrize(("carrier", "codec"), [("twilio", None), ("telnyx", "PCMU"),
                         ("telnyx", "PCMA"), ("telnyx", "L16"), ("plivo", "PCMU"),
                         ("plivo", "L16"), ("exotel", None)])  # fmt: skip
def test_every_message_the_carrier_sends_parses(carrier: str, codec: str | None) -> None:
    wire, serializer = _wire(carrier, codec), carriers.serializer(carrier)
    if (hello := wire.connected()) is not None:
        assert isinstance(_parse(serializer, hello)[0], Connected)
    (start,) = _parse(serializer, wire.start("1"))
    assert isinstance(start, Start)
    assert (start.stream_sid, start.call_sid) == ("S1", "C1")
    assert start.custom_parameters == {"customer": "42"}
    assert start.codec == wire.codec and start.sample_rate == 8000
    assert serializer.stream_id == "S1"
    (media,) = _parse(serializer, wire.media("2", 1, 0, wire.encode(ULAW)))
    assert isinstance(media, Media) and media.codec == wire.codec
    assert media.pcm() == audio.ulaw_decode(ULAW) or wire.codec == "PCMA"
    assert len(media.pcm()) == 2 * len(ULAW) and media.chunk == 1
    assert _parse(serializer, wire.dtmf("3", "7")) == [Dtmf("7")]
    assert _parse(serializer, wire.echo("4", "seg-1")) == [Mark("seg-1")]
    if (ack := wire.cleared("5")) is not None:
        assert _parse(serializer, ack) == [Cleared()]
    assert _parse(serializer, wire.stop("6"))[-1] == Stop()
    with pytest.raises(UnknownEvent):
        serializer.parse(json.dumps({"event": "bogus"}))


@pytest.mark.parametrize("carrier", carriers.CARRIERS)
def test_what_we_build_has_exactly_the_carriers_fields(carrier: str) -> None:
    wire, serializer = _wire(carrier), carriers.serializer(carrier)
    _parse(serializer, wire.start("1"))
    sent = [*serializer.media(PCM), *serializer.flush()[0], *serializer.mark("seg-1"),
            *serializer.clear()]  # fmt: skip
    kinds = []
    for raw in sent:
        errors, asked = wire.read(json.loads(raw))
        assert errors == [], raw
        assert asked is not None
        kinds.append(asked[0])
        if asked[0] == "media":
            assert audio.ulaw_decode(asked[1]) == audio.ulaw_decode(audio.ulaw_encode(PCM))
        if asked[0] == "mark":
            assert asked[1] == "seg-1"
    assert kinds == ["media", "mark", "clear"]


@pytest.mark.parametrize(("carrier", "names"), [
    ("twilio", {"media": "media", "mark": "mark", "clear": "clear"}),
    ("telnyx", {"media": "media", "mark": "mark", "clear": "clear"}),
    ("plivo", {"media": "playAudio", "mark": "checkpoint", "clear": "clearAudio"}),
    ("exotel", {"media": "media", "mark": "mark", "clear": "clear"}),
])  # fmt: skip
def test_outbound_event_names(carrier: str, names: dict[str, str]) -> None:
    serializer = carriers.serializer(carrier)
    _parse(serializer, _wire(carrier).start("1"))
    built = {"media": serializer.media(PCM), "mark": serializer.mark("m"),
             "clear": serializer.clear()}  # fmt: skip
    for kind, messages in built.items():
        assert json.loads(messages[0])["event"] == names[kind]
    if carrier == "telnyx":  # Telnyx's outbound messages carry no stream id
        assert all(set(json.loads(m[0])) <= {"event", "media", "mark"} for m in built.values())


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 60), st.integers(1, 8), st.randoms(use_true_random=False),
       st.lists(st.integers(0, 59), max_size=10))  # fmt: skip
def test_telnyx_media_permuted_within_the_window_comes_out_in_order(
    n: int, window: int, rng: random.Random, copies: list[int]
) -> None:
    # each frame lands less than ``window`` places from where it belongs, some twice
    chunks = sorted(range(1, n + 1), key=lambda c: c + rng.uniform(0, window))
    extra = [c % n + 1 for c in copies]
    for c in extra:
        chunks.insert(chunks.index(c) + rng.randint(1, 3), c)
    reorder, out = Reorder(window), []
    for chunk in chunks:
        out += reorder.push(chunk, Media(bytes([chunk % 256]), chunk=chunk))
    out += reorder.drain()
    assert [m.chunk for m in out] == list(range(1, n + 1))
    assert reorder.late + reorder.duplicates == len(extra) and reorder.skipped == 0


def test_telnyx_gives_up_on_a_lost_frame_once_the_window_is_full() -> None:
    reorder, out = Reorder(3), []
    for chunk in [1, 3, 4, 5, 6, 2]:
        out += reorder.push(chunk, Media(b"x", chunk=chunk))
    assert [m.chunk for m in out] == [1, 3, 4, 5, 6]
    assert (reorder.skipped, reorder.late) == (1, 1)


def test_telnyx_stop_releases_the_frames_still_waiting() -> None:
    wire, serializer = _wire("telnyx"), carriers.serializer("telnyx")
    _parse(serializer, wire.start("1"))
    assert _parse(serializer, wire.media("2", 2, 20, ULAW)) == []
    frames = _parse(serializer, wire.stop("3"))
    assert [type(f) for f in frames] == [Media, Stop]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 700), st.booleans()), max_size=20))
def test_exotel_sends_multiples_of_320_bytes_and_pads_only_before_a_mark(
    pieces: list[tuple[int, bool]],
) -> None:
    serializer = carriers.serializer("exotel")
    sent, want = b"", b""
    for size, then_mark in pieces:
        pcm = bytes(i % 251 for i in range(2 * size))
        want += pcm
        payloads = serializer.media(pcm)
        if then_mark:
            held, pad = serializer.flush()
            payloads += held
            want += bytes(2 * pad)
        for raw in payloads:
            chunk = _payload(raw)
            assert len(chunk) % 320 == 0 and chunk
            sent += chunk
    assert want.startswith(sent) and len(want) - len(sent) < 320


def _payload(raw: str) -> bytes:
    import base64

    return base64.b64decode(json.loads(raw)["media"]["payload"])


@pytest.mark.parametrize("carrier", carriers.CARRIERS)
def test_detection_from_the_first_messages(carrier: str) -> None:
    wire = _wire(carrier)
    assert carriers.detect(wire.start("1")) == carrier
    assert carriers.detect(wire.media("2", 1, 0, ULAW)) == carrier
    hello = wire.connected()
    expected = "twilio" if carrier == "twilio" else None  # a bare connected says nothing
    assert hello is None or carriers.detect(hello) == expected


@pytest.mark.parametrize("carrier", carriers.CARRIERS)
async def test_root_detects_each_carrier(carrier: str) -> None:
    async with phone_rig(GREETER, listen=False) as rig:
        url = f"ws://127.0.0.1:{rig.server.port}/"
        async with CarrierCaller(url, carrier=carrier) as caller:
            with anyio.fail_after(SAFETY_S):
                await caller.wait_for(lambda: len(played(caller)) >= 1)
    assert caller.protocol_errors == []
    assert rig.transports[0].metadata["carrier"] == carrier


async def test_the_carrier_option_overrides_detection_on_root_only() -> None:
    async with phone_rig(GREETER, listen=False, carrier="exotel") as rig:
        assert rig.server.url.endswith("/exotel")
        assert rig.server.carrier_for("/") == "exotel"
        assert rig.server.carrier_for("/plivo") == "plivo"
        root = f"ws://127.0.0.1:{rig.server.port}/"
        # a Twilio-shaped start on "/" is read as Exotel's: none of its camelCase ids
        async with connect(root) as ws:
            await ws.send(json.dumps(_wire("twilio").start("1")))
            with anyio.fail_after(SAFETY_S):
                await ws.recv()  # the call started: its audio comes
        async with CarrierCaller(root, carrier="exotel") as caller:
            with anyio.fail_after(SAFETY_S):
                await caller.wait_for(lambda: len(played(caller)) >= 1)
    assert [t.metadata["carrier"] for t in rig.transports] == ["exotel", "exotel"]
    assert rig.transports[0].start.call_sid == ""
    assert rig.transports[1].start.call_sid == caller.call_sid
    assert caller.protocol_errors == []


async def test_with_a_twilio_token_a_call_on_root_needs_a_signature_whatever_the_carrier() -> None:
    # the rest (each carrier's own check, 1008 after detection): tests/test_phone_auth.py
    options: dict[str, Any] = {"public_url": "wss://bot.example.com", "auth_token": "tok"}
    signed = {"X-Twilio-Signature": twilio_signature("tok", "wss://bot.example.com/")}
    async with phone_rig(GREETER, listen=False, **options) as rig:
        root = f"ws://127.0.0.1:{rig.server.port}/"
        async with CarrierCaller(root, carrier="twilio", headers=signed) as twilio:
            with anyio.fail_after(SAFETY_S):
                await twilio.wait_for(lambda: len(played(twilio)) >= 1)
        with pytest.raises(InvalidStatus):
            async with CarrierCaller(root, carrier="telnyx"):
                pass
    assert rig.server.refused[403] == 1
    assert [t.metadata["carrier"] for t in rig.transports] == ["twilio"]

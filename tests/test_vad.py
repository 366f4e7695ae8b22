"""Silero and WebRTC VADs: one start then one end around speech, nothing on silence or
low noise, the same events for any chunking; and the speech gate they share."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Callable

import numpy as np
import pytest

from voiceagent import audio, ports
from voiceagent.adapters.vad_silero import SileroVAD, SpeechGate, VADNotInstalled
from voiceagent.adapters.vad_webrtc import WebRTCVAD

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None,
    reason="espeak-ng is not installed (Debian package espeak-ng: apt-get install espeak-ng)",
)
needs_silero = pytest.mark.skipif(
    importlib.util.find_spec("faster_whisper") is None
    or importlib.util.find_spec("onnxruntime") is None,
    reason="the offline extra is not installed: pip install 'voiceagent[offline]'",
)
needs_webrtc = pytest.mark.skipif(
    importlib.util.find_spec("webrtcvad") is None,
    reason="the offline extra is not installed: pip install 'voiceagent[offline]'",
)

VADFactory = Callable[[int], ports.VAD]
DETECTORS: list[tuple[str, VADFactory, pytest.MarkDecorator]] = [
    ("silero", lambda rate: SileroVAD(sample_rate=rate), needs_silero),
    ("webrtc", lambda rate: WebRTCVAD(sample_rate=rate), needs_webrtc),
]
CASES = [
    pytest.param(make, rate, id=f"{name}-{rate}", marks=mark)
    for name, make, mark in DETECTORS
    for rate in (16000, 8000)
]
LEAD_S, TAIL_S = 1.0, 1.5
START_TOLERANCE_MS = 100.0  # measured: 0-10 ms early for both detectors
END_TOLERANCE_MS = 200.0  # measured: 20-110 ms late (the detectors hear the decay)


def espeak(text: str, rate: int) -> bytes:
    done = subprocess.run(
        ["espeak-ng", "-v", "en-us", "--stdout", text], capture_output=True, check=True
    )
    pcm, espeak_rate = audio.parse_wav(done.stdout)
    resampler = audio.Resampler(espeak_rate, rate)
    return resampler.process(pcm) + resampler.flush()


def utterance(rate: int) -> tuple[bytes, int, int]:
    """Speech between silences, and the sample numbers where it is audible (first, last)."""
    speech = espeak("what is the weather in Paris", rate)
    audible = np.nonzero(np.abs(audio.pcm_to_int16(speech)) > 300)[0]
    lead = round(LEAD_S * rate)
    pcm = audio.silence(lead) + speech + audio.silence(round(TAIL_S * rate))
    return pcm, lead + int(audible[0]), lead + int(audible[-1])


def low_noise(rate: int, dbfs: float = -40.0, seconds: float = 3.0) -> bytes:
    rng = np.random.default_rng(7)
    return audio.float32_to_pcm(rng.normal(0.0, 10 ** (dbfs / 20), round(seconds * rate)))


def in_chunks(vad: ports.VAD, pcm: bytes, seed: int) -> list[ports.VADEvent]:
    """Fed in random pieces, odd byte counts included."""
    rng = np.random.default_rng(seed)
    events: list[ports.VADEvent] = []
    start = 0
    while start < len(pcm):
        size = int(rng.integers(1, 3000))
        events += vad.process(pcm[start : start + size])
        start += size
    return events


@needs_espeak
@pytest.mark.parametrize(("make", "rate"), CASES)
def test_speech_between_silences_gives_one_start_then_one_end_at_its_bounds(
    make: VADFactory, rate: int
) -> None:
    pcm, first, last = utterance(rate)
    events = make(rate).process(pcm)
    assert [type(event) for event in events] == [ports.SpeechStarted, ports.SpeechEnded]
    start, end = (audio.ms_to_samples(event.at_ms, rate) for event in events)
    assert abs(start - first) <= audio.ms_to_samples(START_TOLERANCE_MS, rate)
    assert abs(end - last) <= audio.ms_to_samples(END_TOLERANCE_MS, rate)


@needs_espeak
@pytest.mark.parametrize(("make", "rate"), CASES)
def test_any_chunking_gives_the_same_events(make: VADFactory, rate: int) -> None:
    pcm, _, _ = utterance(rate)
    whole = make(rate).process(pcm)
    assert in_chunks(make(rate), pcm, seed=1) == whole
    assert in_chunks(make(rate), pcm, seed=2) == whole


@pytest.mark.parametrize(("make", "rate"), CASES)
def test_silence_gives_no_event(make: VADFactory, rate: int) -> None:
    assert make(rate).process(audio.silence(3 * rate)) == []


@pytest.mark.parametrize(("make", "rate"), CASES)
def test_low_noise_gives_no_event(make: VADFactory, rate: int) -> None:
    assert make(rate).process(low_noise(rate)) == []


@needs_espeak
@pytest.mark.parametrize(("make", "rate"), CASES)
def test_reset_starts_a_new_stream_at_position_zero(make: VADFactory, rate: int) -> None:
    pcm, _, _ = utterance(rate)
    vad = make(rate)
    first = vad.process(pcm[: len(pcm) // 2])
    vad.reset()
    assert first and vad.process(pcm) == make(rate).process(pcm)


@pytest.mark.parametrize(("make", "rate"), CASES)
def test_it_is_a_vad_plug(make: VADFactory, rate: int) -> None:
    vad = make(rate)
    assert isinstance(vad, ports.VAD)
    assert vad.sample_rate == rate


@needs_webrtc
def test_webrtc_refuses_a_rate_it_cannot_take() -> None:
    with pytest.raises(ValueError, match="22050"):
        WebRTCVAD(sample_rate=22050)


@pytest.mark.parametrize(
    ("module", "make"),
    [("onnxruntime", lambda: SileroVAD()), ("webrtcvad", lambda: WebRTCVAD())],
    ids=["silero", "webrtc"],
)
def test_a_missing_package_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, module: str, make: Callable[[], ports.VAD]
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    with pytest.raises(VADNotInstalled, match=r"pip install 'voiceagent\[offline\]'"):
        make()


# --- the speech gate, on frame decisions alone ---------------------------------------------

FRAME = 160  # 10 ms at 16 kHz


def gate_events(decisions: str) -> list[ports.VADEvent]:
    """Events for frames given as characters: 'S' speech, '.' silence (10 ms each)."""
    gate = SpeechGate(16000, min_speech_ms=50, min_silence_ms=100)
    events = [gate.frame(decision == "S", FRAME) for decision in decisions]
    return [event for event in events if event is not None]


def test_a_blip_shorter_than_the_minimum_speech_is_ignored() -> None:
    assert gate_events("....SSSS" + "." * 30) == []


def test_a_gap_shorter_than_the_hangover_does_not_end_the_speech() -> None:
    events = gate_events("SSSSSS" + "." * 9 + "SSS" + "." * 10)
    assert events == [ports.SpeechStarted(at_ms=0.0), ports.SpeechEnded(at_ms=180.0)]


def test_short_words_add_up_to_a_start_dated_at_the_first() -> None:
    events = gate_events("..SSS.....SSS" + "." * 10)
    assert events == [ports.SpeechStarted(at_ms=20.0), ports.SpeechEnded(at_ms=130.0)]


def test_the_end_comes_after_the_hangover_and_names_where_speech_stopped() -> None:
    assert gate_events("SSSSS" + "." * 9) == [ports.SpeechStarted(at_ms=0.0)]
    assert gate_events("SSSSS" + "." * 10)[-1] == ports.SpeechEnded(at_ms=50.0)

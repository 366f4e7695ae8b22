"""What listening and speaking cost offline: Whisper tiny.en latency per utterance, piper's
first audio (cold and warm), and each VAD's cost per 20 ms frame. Needs the offline extra.

Run: ``.venv/bin/python bench/listening.py [--runs N]``
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable

import anyio

from voiceagent import audio, ports
from voiceagent.adapters.piper import PiperTTS
from voiceagent.adapters.vad_silero import SileroVAD
from voiceagent.adapters.vad_webrtc import WebRTCVAD
from voiceagent.adapters.whisper import WhisperSTT

RATE = 16000
UTTERANCES = [
    "what is the weather in Paris",
    "set a timer for ten minutes",
    "please call me tomorrow",
    "thank you very much",
]
SHORT_PHRASE = "Sure, one moment."
LONG_PHRASE = "The weather in Paris is sunny today, with a high of twenty degrees."


def espeak(text: str, rate: int = RATE) -> bytes:
    done = subprocess.run(
        ["espeak-ng", "-v", "en-us", "--stdout", text], capture_output=True, check=True
    )
    pcm, espeak_rate = audio.parse_wav(done.stdout)
    resampler = audio.Resampler(espeak_rate, rate)
    return resampler.process(pcm) + resampler.flush()


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.0f} ms"


# --- Whisper ---------------------------------------------------------------------------------


async def whisper_latency(runs: int) -> None:
    stt = WhisperSTT(sample_rate=RATE)
    started = time.perf_counter()
    await stt.load()
    loaded = time.perf_counter() - started
    print(f"Whisper tiny.en (int8, beam {stt.beam_size}): model load {ms(loaded)}")
    await stt.transcribe(espeak("warm up"))
    medians = []
    for text in UTTERANCES:
        pcm = espeak(text)
        times, heard = [], ""
        for _ in range(runs):
            started = time.perf_counter()
            heard = await stt.transcribe(pcm)
            times.append(time.perf_counter() - started)
        medians.append(statistics.median(times))
        seconds = audio.pcm_duration_ms(pcm, RATE) / 1000
        print(f"  {seconds:4.2f} s of speech → {ms(medians[-1])}  {text!r} → {heard!r}")
    print(f"  median latency per utterance (finalize → final): {ms(statistics.median(medians))}")


# --- piper -----------------------------------------------------------------------------------


async def one_phrase(text: str) -> AsyncIterator[str]:
    yield text


async def first_audio(tts: PiperTTS, text: str) -> tuple[float, float]:
    """(seconds to the first chunk, seconds of audio) for one phrase."""
    started = time.perf_counter()
    first, samples = 0.0, 0
    async for chunk in tts.synthesize(one_phrase(text)):
        if not samples:
            first = time.perf_counter() - started
        samples += audio.pcm_samples(chunk)
    return first, samples / tts.sample_rate


async def piper_latency(runs: int) -> None:
    print("piper en_US-joe-medium, one long-lived process (--output-dir), 24 kHz out:")
    cold = []
    for _ in range(max(1, runs // 2)):
        tts = PiperTTS(sample_rate=24000)
        try:
            cold.append((await first_audio(tts, SHORT_PHRASE))[0])
        finally:
            await tts.aclose()
    print(f"  cold (process start + voice load + phrase): {ms(statistics.median(cold))}")
    tts = PiperTTS(sample_rate=24000)
    try:
        await first_audio(tts, "Warm up.")
        for text in (SHORT_PHRASE, LONG_PHRASE):
            results = [await first_audio(tts, text) for _ in range(runs)]
            latency = statistics.median(first for first, _ in results)
            spoken = results[0][1]
            print(
                f"  warm first audio {ms(latency)} for {spoken:4.2f} s of speech "
                f"({spoken / latency:4.1f}× real time)  {text!r}"
            )
    finally:
        await tts.aclose()


# --- VAD -------------------------------------------------------------------------------------


def vad_cost(frames: int) -> None:
    """Each VAD fed a 20 ms frame at a time: speech and silence, cost per call."""
    speech = espeak("what is the weather in Paris, and will it rain tomorrow")
    pcm = (audio.silence(RATE // 2) + speech + audio.silence(RATE // 2)) * 20
    frame_bytes = RATE // 50 * audio.SAMPLE_WIDTH
    chunks = [pcm[i : i + frame_bytes] for i in range(0, len(pcm), frame_bytes)][:frames]
    print(f"VAD cost per 20 ms frame at 16 kHz ({len(chunks)} frames, speech and silence):")
    makers: list[tuple[str, Callable[[], ports.VAD]]] = [
        ("Silero (onnxruntime, 1 thread)", SileroVAD),
        ("WebRTC (mode 3)", WebRTCVAD),
    ]
    for name, make in makers:
        vad = make()
        times = []
        for chunk in chunks:
            started = time.perf_counter_ns()
            vad.process(chunk)
            times.append((time.perf_counter_ns() - started) / 1000)
        times.sort()
        print(
            f"  {name:32} median {statistics.median(times):7.1f} µs, "
            f"mean {statistics.fmean(times):7.1f} µs, p95 {times[int(0.95 * len(times))]:7.1f} µs"
        )
    print("  (Silero decides every 32 ms, so about 3 calls in 5 run the model: see the mean)")


# --- the Pulse adapter's figures are added here by its own section -----------------------


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="repeats per latency figure")
    parser.add_argument("--frames", type=int, default=5000, help="20 ms frames per VAD")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}; medians of {args.runs} runs unless said")
    await whisper_latency(args.runs)
    await piper_latency(args.runs)
    vad_cost(args.frames)


if __name__ == "__main__":
    anyio.run(main)

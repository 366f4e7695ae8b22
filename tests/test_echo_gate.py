"""The half-duplex gate: the agent's echo never reaches the VAD, a real interruption does,
and soon (counted in audio, not wall-clock time)."""

from __future__ import annotations

import numpy as np
from session_rig import RATE, needs_offline, spoken

from voiceagent import audio
from voiceagent.adapters.echo_gate import EchoGate

BLOCK = 320  # 20 ms at 16 kHz


def opened_at_ms(pcm: bytes) -> float | None:
    """Where (ms into ``pcm``) the gate first lets real audio through while the agent talks."""
    gate = EchoGate()
    for i in range(0, len(pcm) - 2 * BLOCK + 1, 2 * BLOCK):
        for out in gate.process(pcm[i : i + 2 * BLOCK], 20.0, speaking=True):
            if any(out):
                return i / 2 * 1000 / RATE
    return None


@needs_offline
def test_an_interruption_with_pauses_between_its_words_gets_through_within_its_first_words() -> (
    None
):
    speech = spoken("Wait, wait. Stop talking please.")
    onset = next(i for i, s in enumerate(np.frombuffer(speech, np.int16)) if abs(s) > 300)
    opened = opened_at_ms(bytes(3200) + speech)
    assert opened is not None
    assert opened - (1600 + onset) * 1000 / RATE < 800  # not two seconds in


def test_a_quiet_echo_never_opens_the_gate() -> None:
    t = np.arange(RATE * 3) / RATE
    echo = (0.01 * 32767 * np.sin(2 * np.pi * 220 * t)).astype(np.int16)  # about -43 dBFS
    assert audio.rms_dbfs(echo.tobytes()) < -30
    assert opened_at_ms(echo.tobytes()) is None


def test_a_short_loud_click_does_not_open_the_gate() -> None:
    click = np.zeros(RATE, np.int16)
    click[8000 : 8000 + 1600] = 20000  # 100 ms, loud
    assert opened_at_ms(click.tobytes()) is None

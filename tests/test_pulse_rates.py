"""Pulse takes only the sample rates Smallest lists; other input is resampled to one, never
refused (LiveKit stt.py:176-177: "Supported: 8000, 16000, 22050, 24000, 44100, 48000")."""

from __future__ import annotations

import pytest

from voiceagent.adapters import from_config
from voiceagent.adapters.pulse import PULSE_RATES, PulseSTT


def test_the_listed_rates_are_pulses() -> None:
    assert PULSE_RATES == (8000, 16000, 22050, 24000, 44100, 48000)
    assert [PulseSTT(sample_rate=rate).sample_rate for rate in PULSE_RATES] == list(PULSE_RATES)


@pytest.mark.parametrize("rate", [11025, 12000, 32000, 7999, 96000])
def test_a_rate_not_listed_fails_at_construction(rate: int) -> None:
    with pytest.raises(ValueError, match="8000, 16000, 22050, 24000, 44100, 48000") as caught:
        PulseSTT(sample_rate=rate)
    assert f"not {rate}" in str(caught.value) and "resample" in str(caught.value)


@pytest.mark.parametrize(
    ("input_rate", "pulse_rate"),
    [(22050, 22050), (44100, 44100), (8000, 8000), (11025, 16000), (32000, 16000), (12000, 16000)],
)
def test_the_configuration_hears_a_listed_input_rate_as_is_and_resamples_others(
    input_rate: int, pulse_rate: int
) -> None:
    chosen = from_config(tts="test", stt="pulse", need_stt=True, environ={}, input_rate=input_rate)
    assert chosen.stt is not None and chosen.stt.sample_rate == pulse_rate

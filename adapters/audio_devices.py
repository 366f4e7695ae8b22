"""The sound card through PortAudio (``sounddevice``, the ``audio`` extra): the lazy import
with an error that says what to install, which devices exist, and the rate each takes.

``sounddevice`` has no type hints: it stays behind the typed functions of this file.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

AUDIO_EXTRA = "pip install 'voiceagent[audio]'"
PORTAUDIO_PACKAGE = "libportaudio2"  # Debian/Ubuntu; macOS: brew install portaudio


class AudioUnavailable(ImportError):
    """No sound card library: the message names what to install."""


class DeviceError(RuntimeError):
    """A named device does not exist, or takes no audio in the way asked."""


def sounddevice() -> Any:
    """The ``sounddevice`` module; ``AudioUnavailable`` naming the package when it or
    PortAudio is missing (importing it loads PortAudio, which raises ``OSError``)."""
    try:
        return importlib.import_module("sounddevice")
    except ImportError as error:
        raise AudioUnavailable(f"sounddevice is not installed ({error}); {AUDIO_EXTRA}") from error
    except OSError as error:
        raise AudioUnavailable(
            f"the PortAudio library was not found ({error}): install it "
            f"(Debian/Ubuntu: apt-get install {PORTAUDIO_PACKAGE}; macOS: brew install "
            f"portaudio), with {AUDIO_EXTRA}"
        ) from error


@dataclass(frozen=True)
class Device:
    """One end of the sound card: its PortAudio index, name and default rate."""

    index: int
    name: str
    default_rate: int


def find_device(device: int | str | None, kind: str) -> Device | None:
    """The input (``kind="input"``) or output device named or numbered ``device`` (None: the
    default); None when there is no default one. A named device that is missing raises."""
    sd = sounddevice()
    channels = f"max_{kind}_channels"
    try:
        if device is None:
            index = sd.default.device[0 if kind == "input" else 1]
            if index is None or int(index) < 0:
                return None
            info = sd.query_devices(int(index))
        else:
            info = sd.query_devices(device, kind)
    except (ValueError, sd.PortAudioError) as error:
        if device is None:
            return None  # no server or no card: "no default device", not an error
        raise DeviceError(f"no {kind} device {device!r}: {error}") from error
    if int(info[channels]) < 1:
        if device is None:
            return None
        raise DeviceError(f"device {device!r} has no {kind} channels")
    return Device(int(info["index"]), str(info["name"]), int(info["default_samplerate"]))


def has_input_device() -> bool:
    """A default microphone and speaker exist (False also without PortAudio)."""
    try:
        return find_device(None, "input") is not None and find_device(None, "output") is not None
    except AudioUnavailable:
        return False


def negotiate_rate(device: Device, kind: str, wanted: int) -> int:
    """``wanted`` when the device takes it (16-bit mono), else the device's own rate (the
    caller resamples)."""
    sd = sounddevice()
    check = sd.check_input_settings if kind == "input" else sd.check_output_settings
    try:
        check(device=device.index, samplerate=wanted, channels=1, dtype="int16")
    except (ValueError, sd.PortAudioError):
        return device.default_rate
    return wanted

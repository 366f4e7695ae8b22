"""Real audio devices without a sound card: a private PulseAudio server with two null sinks,
``mic_feed`` (play into it: the program's microphone hears it) and ``agent_speaker`` (the
program's speaker; record its monitor). Tests and ``bench/live.py`` use it.

PulseAudio is global state: the server gets its own runtime folder, its output goes to
/dev/null (a daemon holding stdout keeps a CI job alive), and ``stop()`` kills it, so a
later ``voiceagent demo`` does not find a "device" and go live.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

RATE = 16000
MIC = "mic_feed"
SPEAKER = "agent_speaker"
PROGRAMS = ("pulseaudio", "pactl", "pacat", "paplay", "parec")
_RAW = ["--rate=16000", "--channels=1", "--format=s16le", "--raw"]


def missing_programs() -> list[str]:
    return [p for p in PROGRAMS if shutil.which(p) is None]


class NullSinks:
    """The private server; ``env`` is the environment a program needs to use it."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="voiceagent-pulse-"))
        self.env = {**os.environ, "PULSE_RUNTIME_PATH": str(self.folder)}
        self.env.pop("PULSE_SERVER", None)
        self._keepalive: list[subprocess.Popen[bytes]] = []

    def start(self) -> NullSinks:
        sink = f"rate={RATE} channels=1"
        self._run(
            "pulseaudio", "--daemonize=yes", "--exit-idle-time=-1", "--disallow-exit", "-n",
            "--load=module-native-protocol-unix",
            f"--load=module-null-sink sink_name={SPEAKER} {sink}",
            f"--load=module-null-sink sink_name={MIC} {sink}",
        )  # fmt: skip
        self._run("pactl", "set-default-sink", SPEAKER)
        self._run("pactl", "set-default-source", f"{MIC}.monitor")
        # an idle null sink renders in 2 s blocks: a quiet low-latency stream on each keeps
        # a new capture from waiting ~2 s for its first data
        for name in (MIC, SPEAKER):
            command = ["pacat", "-p", "-d", name, *_RAW, "--latency-msec=20"]
            self._keepalive.append(self.popen(command, stdin=subprocess.DEVNULL))
        time.sleep(2.0)
        return self

    def popen(self, command: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
        kwargs.setdefault("stdout", subprocess.DEVNULL)
        kwargs.setdefault("stderr", subprocess.DEVNULL)
        return subprocess.Popen(command, env=self.env, **kwargs)  # type: ignore[call-overload, no-any-return]

    def play(self, wav: Path) -> subprocess.Popen[bytes]:
        """Plays a WAV into the microphone (returns at once)."""
        return self.popen(["paplay", "-d", MIC, str(wav)])

    def record(self, source: str = f"{SPEAKER}.monitor") -> Recorder:
        return Recorder(self, source)

    def stop(self) -> None:
        for process in self._keepalive:
            process.kill()
            process.wait()
        subprocess.run(
            ["pulseaudio", "--kill"], env=self.env, capture_output=True, timeout=10, check=False
        )
        pid_file = self.folder / "pid"
        if pid_file.is_file():  # --kill did not do it: the pid is the daemon's own
            try:
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
            except (ValueError, IndexError, ProcessLookupError):
                pass
        shutil.rmtree(self.folder, ignore_errors=True)

    def _run(self, *command: str) -> None:
        subprocess.run(
            list(command), env=self.env, check=True, timeout=20,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip


class Recorder:
    """Records a source (16 kHz mono PCM16) from now on; ``at(t)`` maps a ``monotonic()``
    time to a sample index, dated by when the first bytes arrived."""

    def __init__(self, sinks: NullSinks, source: str) -> None:
        command = ["parec", "-d", source, *_RAW, "--latency-msec=10"]
        self._process = sinks.popen(command, stdout=subprocess.PIPE)
        self._data = bytearray()
        self.first_at: float | None = None  # monotonic() when the first bytes came
        self._first_len = 0
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        stdout = self._process.stdout
        assert isinstance(stdout, io.BufferedReader)
        while chunk := stdout.read1(3200):  # what has arrived, at once: the dating needs it
            if self.first_at is None:
                self.first_at, self._first_len = time.monotonic(), len(chunk) // 2
            self._data += chunk

    def pcm(self) -> bytes:
        return bytes(self._data)

    def at(self, monotonic: float) -> int:
        """The sample index recorded at ``monotonic`` (the first chunk ended when it came)."""
        assert self.first_at is not None, "nothing recorded yet"
        return self._first_len + round((monotonic - self.first_at) * RATE)

    def stop(self) -> bytes:
        self._process.terminate()
        self._process.wait(timeout=5)
        self._thread.join(timeout=5)
        return self.pcm()

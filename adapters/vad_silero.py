"""Voice activity detection with Silero through onnxruntime, on the model file that ships
inside faster-whisper (the ``offline`` extra); and the speech gate every VAD here shares."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voiceagent import audio
from voiceagent.ports import SpeechEnded, SpeechStarted, VADEvent

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

INSTALL_HINT = "pip install 'voiceagent[offline]'"

MODEL_RATE = 16000  # this Silero export has no sample-rate input: 16 kHz only
FRAME_SAMPLES = 512  # 32 ms of new audio per frame...
CONTEXT_SAMPLES = 64  # ...after the last 64 samples of the frame before (input[n, 576])
STATE_SHAPE = (1, 1, 128)  # the LSTM's h and c, carried from frame to frame


class VADNotInstalled(ImportError):
    """A VAD's package is missing; the message names the extra that brings it."""


class SpeechGate:
    """Speech/silence decisions per frame → at most one start, then one end, alternately.

    A start needs ``min_speech_ms`` of speech frames, with no gap as long as the hangover
    in between (so a short word does not reset the count); it is dated where that speech
    began. An end needs ``min_silence_ms`` of silence (the hangover) and is dated where the
    speech stopped, so an event arrives later than the moment it names.
    """

    def __init__(self, sample_rate: int, min_speech_ms: float, min_silence_ms: float) -> None:
        self.sample_rate = sample_rate
        self.min_speech = audio.ms_to_samples(min_speech_ms, sample_rate)
        self.min_silence = audio.ms_to_samples(min_silence_ms, sample_rate)
        self.reset()

    def reset(self) -> None:
        self.position = 0  # samples decided so far
        self.speaking = False
        self._run_start: int | None = None  # where the pending (or current) speech began
        self._speech_in_run = 0
        self._speech_end = 0  # end of the last speech frame

    def frame(self, is_speech: bool, n_samples: int) -> VADEvent | None:
        """The event this frame completes, if any."""
        start, self.position = self.position, self.position + n_samples
        if is_speech:
            if self._run_start is None:
                self._run_start, self._speech_in_run = start, 0
            self._speech_in_run += n_samples
            self._speech_end = self.position
            if not self.speaking and self._speech_in_run >= self.min_speech:
                self.speaking = True
                return SpeechStarted(at_ms=self._ms(self._run_start))
            return None
        if self._run_start is None or self.position - self._speech_end < self.min_silence:
            return None
        # The hangover has passed: a pending run was too short, a spoken one has ended.
        self._run_start = None
        if not self.speaking:
            return None
        self.speaking = False
        return SpeechEnded(at_ms=self._ms(self._speech_end))

    def _ms(self, samples: int) -> float:
        return audio.samples_to_ms(samples, self.sample_rate)


def silero_model_path() -> Path:
    """The Silero VAD model inside the installed faster-whisper package."""
    try:
        spec = importlib.util.find_spec("faster_whisper")
    except ValueError:
        spec = None
    if spec is None or spec.origin is None:
        raise VADNotInstalled(
            f"Silero VAD uses the model inside faster-whisper, which is not installed; "
            f"{INSTALL_HINT}"
        )
    path = Path(spec.origin).parent / "assets" / "silero_vad_v6.onnx"
    if not path.is_file():
        raise VADNotInstalled(f"faster-whisper has no Silero model at {path}; {INSTALL_HINT}")
    return path


class SileroVAD:
    """``ports.VAD`` with Silero: a speech probability per 32 ms, with hysteresis.

    Speech begins at ``threshold`` and lasts until the probability falls below
    ``threshold - 0.15`` (Silero's own hysteresis); see ``SpeechGate`` for the minimum
    speech and the hangover. Audio at other rates is resampled to 16 kHz (statefully, so
    events come ~6 ms later than at 16 kHz). Sans-IO: feed any chunk sizes to ``process``.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        threshold: float = 0.5,
        min_silence_ms: float = 300.0,
        min_speech_ms: float = 250.0,
    ) -> None:
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be between 0 and 1, got {threshold}")
        self._sample_rate = sample_rate
        self.threshold = threshold
        self.neg_threshold = max(0.01, threshold - 0.15)
        self._session = _load_session(silero_model_path())
        self._gate = SpeechGate(MODEL_RATE, min_speech_ms, min_silence_ms)
        self.reset()

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    def reset(self) -> None:
        """Forget everything heard: the next audio is position 0 of a new stream."""
        import numpy as np

        self._resampler = audio.Resampler(self._sample_rate, MODEL_RATE)
        self._pending = b""  # 16 kHz audio short of a whole frame
        self._context = np.zeros(CONTEXT_SAMPLES, dtype=np.float32)
        self._h = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._c = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._gate.reset()

    def process(self, pcm: bytes) -> list[VADEvent]:
        data = self._pending + self._resampler.process(pcm)
        frame_bytes = FRAME_SAMPLES * audio.SAMPLE_WIDTH
        whole = len(data) - len(data) % frame_bytes
        self._pending = data[whole:]
        if not whole:
            return []
        events: list[VADEvent] = []
        for probability in self.probabilities(data[:whole]):
            speech = probability >= (self.neg_threshold if self._gate.speaking else self.threshold)
            event = self._gate.frame(speech, FRAME_SAMPLES)
            if event is not None:
                events.append(event)
        return events

    def probabilities(self, pcm16k: bytes) -> list[float]:
        """Speech probability of each whole frame of 16 kHz audio, carrying the state."""
        import numpy as np

        frames = audio.pcm_to_float32(pcm16k).reshape(-1, FRAME_SAMPLES)
        contexts = np.concatenate([self._context[None, :], frames[:-1, -CONTEXT_SAMPLES:]])
        batch = np.concatenate([contexts, frames], axis=1)
        # Rows are time steps of one sequence: one run over many frames equals one per frame.
        outputs: list[npt.NDArray[np.float32]] = self._session.run(
            None, {"input": batch, "h": self._h, "c": self._c}
        )
        probabilities, self._h, self._c = outputs
        self._context = frames[-1, -CONTEXT_SAMPLES:].copy()
        return [float(p) for p in probabilities.reshape(-1)]


def _load_session(path: Path) -> Any:
    """An onnxruntime session on one thread: a 32 ms frame costs well under a millisecond,
    and more threads would only contend with the rest of the pipeline."""
    try:
        onnxruntime = importlib.import_module("onnxruntime")
    except ImportError as error:
        raise VADNotInstalled(f"Silero VAD needs onnxruntime; {INSTALL_HINT}") from error
    options = onnxruntime.SessionOptions()
    options.inter_op_num_threads = 1
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(
        str(path), providers=["CPUExecutionProvider"], sess_options=options
    )

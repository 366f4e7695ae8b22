"""Half-duplex for open speakers: the microphone hears the agent, so while the agent speaks
the mic is muted, except for a loud, sustained voice (a barge-in over the echo)."""

from __future__ import annotations

from voiceagent import audio

# Speech is not loud in every 20 ms block (gaps between words, soft consonants): a loud run
# survives gaps up to this long, and an open mic closes after this much quiet.
MAX_GAP_MS = 300.0  # pauses between words and at commas run 200-300 ms
CLOSE_AFTER_MS = 300.0


class EchoGate:
    """Decides, block by block, what of the microphone the session may hear.

    While ``speaking`` (the agent's audio is playing, or the room still rings with it),
    blocks are replaced by silence, so the conversation's timing stays intact while the
    agent's own voice never reaches the VAD. A run of blocks at or above ``barge_in_db``
    dBFS (RMS), with gaps of at most ``MAX_GAP_MS``, is held back; once its loud blocks add
    up to ``barge_in_ms`` it is released as it was (the VAD then sees the whole onset) and
    the mic stays open until ``CLOSE_AFTER_MS`` of quiet. A run that stops short is released
    as silence.
    """

    def __init__(self, *, barge_in_db: float = -30.0, barge_in_ms: float = 300.0) -> None:
        self.barge_in_db = barge_in_db
        self.barge_in_ms = barge_in_ms
        self._held: list[bytes] = []
        self._loud_ms = 0.0  # of the held run
        self._quiet_ms = 0.0  # since the last loud block (held run, or open mic)
        self._open = False  # a sustained loud run passed: the user is talking over the agent
        self.muted_blocks = 0

    def process(self, block: bytes, block_ms: float, *, speaking: bool) -> list[bytes]:
        """What to pass on for ``block`` (held blocks may come out later, in order)."""
        if not speaking:
            self._open = False
            return [*self._release(loud=True), block]
        loud = audio.rms_dbfs(block) >= self.barge_in_db
        self._quiet_ms = 0.0 if loud else self._quiet_ms + block_ms
        if self._open:
            self._open = self._quiet_ms < CLOSE_AFTER_MS
            return [block]
        if not loud and not self._held:
            self.muted_blocks += 1
            return [audio.silence(audio.pcm_samples(block))]
        self._held.append(block)
        self._loud_ms += block_ms if loud else 0.0
        if self._quiet_ms > MAX_GAP_MS:
            return self._release(loud=False)
        if self._loud_ms >= self.barge_in_ms:
            self._open = True
            return self._release(loud=True)
        return []

    def _release(self, *, loud: bool) -> list[bytes]:
        held, self._held, self._loud_ms = self._held, [], 0.0
        if loud:
            return held
        self.muted_blocks += len(held)
        return [audio.silence(audio.pcm_samples(b)) for b in held]

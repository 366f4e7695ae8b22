"""``python -m voiceagent.testing.electron``: run the Electron simulator."""

from __future__ import annotations

import sys

from voiceagent.testing.electron.cli import main

if __name__ == "__main__":
    sys.exit(main())

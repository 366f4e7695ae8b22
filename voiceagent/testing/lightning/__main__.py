"""``python -m voiceagent.testing.lightning``: run the Lightning fake."""

from __future__ import annotations

import sys

from voiceagent.testing.lightning.cli import main

if __name__ == "__main__":
    sys.exit(main())

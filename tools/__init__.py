"""Ready-made agent tools (imported as voiceagent.tools).

Tools here import only ``voiceagent.toolkit``. The phone tools (``end_call``,
``transfer_call``) arrive with the phone issue.
"""

from __future__ import annotations

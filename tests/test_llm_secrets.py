"""No key in any log, error or repr: redaction, errors as a person reads them, reprs."""

from __future__ import annotations

from voiceagent.llm import (
    AuthenticationError,
    ElectronClient,
    StreamInterruptedError,
)
from voiceagent.redact import MASK, key_fingerprint, redact, redact_value

KEY = "sk-test-DO-NOT-LOG-1234"


def test_redact_masks_the_known_key_bearer_tokens_and_key_shaped_words() -> None:
    assert KEY not in redact(f"invalid key {KEY}", [KEY])
    assert redact("Authorization: Bearer abc.def-123", []) == f"Authorization: Bearer {MASK}"
    assert "sk-live-abcdef123" not in redact("key sk-live-abcdef123 rejected", [])
    assert redact("nothing secret here", [KEY]) == "nothing secret here"


def test_redact_value_walks_json_like_data() -> None:
    body = {"error": {"message": f"bad key {KEY}", "details": [{"message": KEY}]}, "n": 3}
    cleaned = redact_value(body, [KEY])
    assert KEY not in repr(cleaned)
    assert isinstance(cleaned, dict) and cleaned["n"] == 3


def test_key_fingerprint_is_stable_and_not_the_key() -> None:
    assert key_fingerprint(KEY) == key_fingerprint(KEY) != KEY
    assert KEY not in key_fingerprint(KEY)
    assert key_fingerprint(None) == key_fingerprint("") == ""


def test_client_repr_shows_the_url_and_hides_the_key() -> None:
    client = ElectronClient("https://api.smallest.ai/waves/v1", KEY)
    assert KEY not in repr(client)
    assert "key=***" in repr(client) and "https://api.smallest.ai/waves/v1" in repr(client)
    assert "no key" in repr(ElectronClient("http://127.0.0.1:1/v1"))
    stream = client.stream([{"role": "user", "content": "hi"}])
    assert KEY not in repr(stream) and KEY not in repr(vars(stream))


def test_errors_read_well_for_a_person() -> None:
    error = AuthenticationError("Invalid API key", status=401, request_id="req_42", attempts=1)
    text = str(error)
    assert "Invalid API key" in text and "401" in text and "req_42" in text
    assert "SMALLEST_API_KEY" in text  # the hint says what to do
    assert "AuthenticationError" in repr(error) and "req_42" in repr(error)


def test_stream_interrupted_says_how_much_was_received() -> None:
    error = StreamInterruptedError(
        "connection lost", chunks=3, content_chars=12, tool_call_fragments=2, attempts=1
    )
    assert (error.chunks, error.content_chars, error.tool_call_fragments) == (3, 12, 2)
    assert "3 chunks" in str(error) and "12 content characters" in str(error)
    assert "2 tool-call fragments" in str(error)

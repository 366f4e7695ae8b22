"""The Pulse adapter opens its socket with the configuration in the query string."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from pulse_rig import table_server

from voiceagent.adapters.pulse import PulseSTT


async def test_configuration_is_sent_in_the_query_with_booleans_as_true_false() -> None:
    async with table_server() as server:
        stt = PulseSTT(
            server.url,
            "sk-test",
            language="hi",
            sample_rate=24000,
            vad_events=False,
            extra_query={"word_timestamps": True, "endpointing": False, "eou_timeout_ms": 500},
        )
        async with stt.stream():
            pass
    assert server.connections[0].query == {
        "model": "pulse",
        "language": "hi",
        "sample_rate": "24000",
        "encoding": "linear16",
        "vad_events": "false",
        "word_timestamps": "true",
        "endpointing": "false",
        "eou_timeout_ms": "500",
    }
    assert urlsplit(server.connections[0].path).path == "/waves/v1/stt/live"


async def test_upgrade_carries_bearer_key_and_source_header() -> None:
    async with table_server(api_key="sk-right") as server:
        async with PulseSTT(server.url, "sk-right").stream():
            pass
    headers = server.connections[0].headers
    assert headers["x-source"] == "voiceagent"
    assert headers["authorization"].startswith("Bearer ")


def test_query_is_appended_to_a_url_that_already_has_one() -> None:
    stt = PulseSTT("wss://example.test/stt/live?region=eu", vad_events=True)
    query = dict(parse_qsl(urlsplit(stt.stream_url).query))
    assert query["region"] == "eu" and query["vad_events"] == "true"

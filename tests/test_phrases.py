"""Specifications of voiceagent.phrases: where phrases end, what is spoken, and streaming."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voiceagent.phrases import PhraseSplitter, PhraseText, speakable


def run(deltas: list[str], first_min_words: int = 4) -> list[PhraseText]:
    splitter = PhraseSplitter(first_min_words=first_min_words)
    pieces = [piece for delta in deltas for piece in splitter.feed(delta)]
    return pieces + splitter.finish()


def phrases_of(pieces: list[PhraseText]) -> list[str]:
    phrases, current = [], ""
    for piece in pieces:
        current += piece.text
        if piece.end:
            phrases.append(current)
            current = ""
    assert current == "", "the last piece must close its phrase"
    return phrases


def phrases(text: str, first_min_words: int = 4) -> list[str]:
    return phrases_of(run([text], first_min_words))


def words(text: str) -> list[str]:
    """Word-sized deltas as an LLM streams them: " word" with its leading space."""
    return re.findall(r"\s*\S+|\s+$", text)


# Where phrases end


def test_first_phrase_ends_at_the_first_clause_boundary_after_enough_words() -> None:
    assert phrases("Sure thing my friend, here is what I found for you. It is sunny.") == [
        "Sure thing my friend,",
        "here is what I found for you.",
        "It is sunny.",
    ]


def test_first_phrase_does_not_end_at_a_clause_boundary_before_enough_words() -> None:
    assert phrases("Hi, how are you doing today? Good.") == [
        "Hi, how are you doing today?",
        "Good.",
    ]


def test_first_min_words_is_configurable() -> None:
    assert phrases("Hi, how are you? Good.", first_min_words=1) == ["Hi,", "how are you?", "Good."]


def test_first_phrase_ends_at_a_sentence_end_that_comes_first() -> None:
    assert phrases("Yes. Of course, my friend, anything.") == [
        "Yes.",
        "Of course, my friend, anything.",
    ]


@pytest.mark.parametrize("mark", [";", ":", " —", " -"])
def test_semicolons_colons_and_dashes_are_clause_boundaries(mark: str) -> None:
    text = f"The first thing here{mark} the rest follows."
    assert phrases(text) == [f"The first thing here{mark}", "the rest follows."]


def test_later_phrases_end_only_at_sentence_ends() -> None:
    text = "One two three four, five. Then six, seven, eight, nine, ten; eleven: twelve."
    assert phrases(text)[2:] == ["Then six, seven, eight, nine, ten; eleven: twelve."]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Is it? Yes! Fine. Hmm… ok", ["Is it?", "Yes!", "Fine.", "Hmm…", "ok"]),
        ('He said "stop." Then left.', ['He said "stop."', "Then left."]),
        ("(It was late.) We left.", ["(It was late.)", "We left."]),
        ("नमस्ते दोस्तों। आप कैसे हैं॥ ठीक है", ["नमस्ते दोस्तों।", "आप कैसे हैं॥", "ठीक है"]),
        ("नमस्ते।आप कैसे हैं", ["नमस्ते।", "आप कैसे हैं"]),
        ("你好。我很好！你呢？谢谢", ["你好。", "我很好！", "你呢？", "谢谢"]),
        ("「行きます。」はい。", ["「行きます。」", "はい。"]),
    ],
    ids=[
        "english",
        "closing-quote",
        "closing-bracket",
        "danda",
        "danda-no-space",
        "chinese",
        "japanese",
    ],
)
def test_sentence_ends_in_each_script(text: str, expected: list[str]) -> None:
    assert phrases(text) == expected


def test_cjk_sentence_end_is_released_without_waiting_for_a_space() -> None:
    splitter = PhraseSplitter()
    pieces = splitter.feed("你好。") + splitter.feed("我")
    assert pieces[-1] == PhraseText("好。", True)


def test_a_period_needs_whitespace_or_the_stream_end_after_it() -> None:
    splitter = PhraseSplitter()
    assert splitter.feed("It costs 3.") == [PhraseText("It costs", False)]
    assert splitter.feed("5 dollars. ") == [PhraseText(" 3.5 dollars.", True)]


@pytest.mark.parametrize(
    "text",
    [
        "Dr. Smith and Mr. Jones met Mrs. Lee and Ms. Park on Main St. near the park.",
        "It was Ali vs. Frazier, a fight for the ages and the best.",
        "Bring fruit, e.g. apples, and nuts, i.e. almonds, for the trip.",
        "We open at 9 a.m. and close at 5 p.m. every single day.",
        "Pens, paper, etc. are in the drawer by the door.",
        "The book by J. R. R. Tolkien was read in the U.S. by many people.",
        "It costs 3.5 euros or $4.99 at version 1.2.3 of the app.",
        "Visit example.com/path?x=1 or write to help@example.com for help.",
    ],
    ids=["titles", "vs", "eg-ie", "am-pm", "etc", "initials", "numbers", "url-email"],
)
def test_never_split(text: str) -> None:
    assert phrases(f"Fine. {text}") == ["Fine.", speakable(text)]


def test_am_pm_and_etc_end_a_sentence_before_a_capital() -> None:
    assert phrases("We close at 5 p.m. Then we rest, etc. Fine.") == [
        "We close at 5 p.m.",
        "Then we rest, etc.",
        "Fine.",
    ]


def test_a_blank_line_ends_a_phrase() -> None:
    assert phrases("Here is the plan\n\nwe go now") == ["Here is the plan", "we go now"]


def test_a_single_newline_is_a_space() -> None:
    assert phrases("Here is the plan\nwe go now.") == ["Here is the plan we go now."]


def test_list_items_headings_and_colon_lines_end_at_their_newline() -> None:
    text = "## Options\nYou can pick:\n- the red one\n* the blue one\n1. the green one\nOk."
    assert phrases(text) == [
        "Options",
        "You can pick:",
        "the red one",
        "the blue one",
        "the green one",
        "Ok.",
    ]


# What is spoken


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("This is **bold**, *em*, _em_ and `code`.", "This is bold, em, em and code."),
        ("Keep snake_case and __init__ apart.", "Keep snake_case and init apart."),
        ("# Title\n> - quoted item", "Title quoted item"),
        ("Read [the docs](https://x.com/a) now.", "Read the docs now."),
        ("See ![a chart](chart.png) here.", "See here."),
        ("Run:\n```python\nprint('a. b.')\n```\nDone.", "Run: Done."),
        ("| name | age |\n|---|:-:|\n| Ann | 3 |", "name age Ann 3"),
        ("Go to https://www.example.com/docs now.", "Go to example dot com slash docs now."),
        ("Try example.com/path?x=1.", "Try example dot com slash path."),
        ("Mail a@b.com today.", "Mail a at b dot com today."),
        ("It is 50% off & 2+2=4.", "It is 50 percent off and 2 plus 2 equals 4."),
        (
            "It is 25°C or 77°F, a 90° turn.",
            "It is 25 degrees Celsius or 77 degrees Fahrenheit, a 90 degrees turn.",
        ),
        ("Pay $5, $1, €10 or £3.", "Pay 5 dollars, 1 dollar, 10 euros or 3 pounds."),
        ("We are #1 🎉 today 👍🏽!", "We are number 1 today!"),
        ("Line one\nline two", "Line one line two"),
        ("---\nText", "Text"),
    ],
    ids=[
        "emphasis-code",
        "underscores",
        "heading-quote-bullet",
        "link",
        "image",
        "code-fence",
        "table",
        "url",
        "url-query",
        "email",
        "symbols",
        "degrees",
        "currency",
        "number-sign-emoji",
        "newline",
        "rule",
    ],
)
def test_speakable(text: str, spoken: str) -> None:
    assert speakable(text) == spoken
    assert " ".join(phrases(text)) == spoken


def test_an_unclosed_link_is_spoken_as_plain_text_at_the_sentence_end() -> None:
    assert phrases("See [the docs. Then more") == ["See the docs.", "Then more"]


def test_an_unclosed_code_fence_is_spoken_at_the_end() -> None:
    assert phrases("Look:\n```\nx equals one") == ["Look:", "x equals one"]


def test_nothing_speakable_gives_no_phrase() -> None:
    assert run(["  \n\n 🎉 ** \n", "```\ncode\n```\n"]) == []


# Streaming


@pytest.mark.parametrize(
    "deltas",
    [
        ["Go to https://www.exa", "mple.com/do", "cs now."],
        ["Read [the do", "cs](https://x.c", "om/a) now."],
        ["Dr", ". Smith met Mr.", " Jones at 5 p.", "m. today."],
        ["It costs $4", ".", "99 or 3", ".5 now."],
        ["Some **bo", "ld** and `co", "de` and ``", "`\ncode\n``", "`\nok."],
    ],
    ids=["url", "link", "abbreviations", "numbers", "markdown"],
)
def test_a_split_delta_gives_the_same_result_as_unsplit(deltas: list[str]) -> None:
    assert phrases_of(run(deltas)) == phrases("".join(deltas))


def test_pieces_stream_before_the_phrase_ends() -> None:
    splitter = PhraseSplitter()
    deltas = words("The quick brown fox jumps over the lazy dog and keeps on running.")
    streamed = [splitter.feed(delta) for delta in deltas[:-1]]
    assert any(streamed), "pieces come out before the sentence ends"
    assert all(not piece.end for batch in streamed for piece in batch)
    assert "".join(p.text for batch in streamed for p in batch).startswith("The quick brown fox")


def test_only_the_partial_last_word_is_held() -> None:
    splitter = PhraseSplitter()
    assert splitter.feed("One two thr") == [PhraseText("One two", False)]
    assert splitter.feed("ee four") == [PhraseText(" three", False)]


def test_finish_resets_the_splitter_for_the_next_stream() -> None:
    splitter = PhraseSplitter()
    splitter.feed("First stream, still going")
    assert splitter.finish()[-1].end
    assert phrases_of(splitter.feed("Now again, a new one starts. ") + splitter.finish()) == [
        "Now again, a new one starts."
    ]


_ALPHABET = [
    *"aAbBzZ09 .,;:!?…\n\n-—*_`#[]()|$%&+=@/°'\"。，！你好।॥क्षम🎉",
    "Dr.",
    "e.g.",
    "p.m.",
    "3.5",
    "https://www.example.com/a?b=1",
    "a@b.co",
    "[link](http://x.io)",
    "![img](y.png)",
    "\n```\n",
    "**",
    "\n- ",
    "\n# ",
    "\n1. ",
    " — ",
]


@st.composite
def text_and_deltas(draw: st.DrawFn) -> tuple[str, list[str]]:
    text = "".join(draw(st.lists(st.sampled_from(_ALPHABET), max_size=60)))
    cuts = sorted(draw(st.sets(st.integers(0, len(text)), max_size=12)))
    bounds = [0, *cuts, len(text)]
    return text, [text[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=200, deadline=None)
@given(text_and_deltas())
def test_any_split_gives_the_phrases_of_the_whole_text(case: tuple[str, list[str]]) -> None:
    text, deltas = case
    whole = run([text])
    split = run(deltas)
    assert phrases_of(split) == phrases_of(whole)
    assert all(piece.text.strip() for piece in split)
    assert re.sub(r"\s", "", "".join(p.text for p in split)) == re.sub(r"\s", "", speakable(text))

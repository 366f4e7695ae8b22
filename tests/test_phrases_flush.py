"""Specifications of voiceagent.phrases at a delta's end: which phrase ends are known at once,
which wait for the next character (and a quiet), and what `flush()` does to what follows."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_phrases import _ALPHABET, phrases, phrases_of, words

from voiceagent.phrases import PhraseSplitter, PhraseText


def eager(deltas: list[str]) -> list[PhraseText]:
    """As the turn feeds a stream: each delta, then whatever phrase end it completes."""
    splitter = PhraseSplitter()
    pieces: list[PhraseText] = []
    for delta in deltas:
        pieces += splitter.feed(delta)
        pieces += splitter.flush_complete()
    return pieces + splitter.finish()


@pytest.mark.parametrize(
    "text",
    [
        "Let me check the weather for you.",
        "Is it raining?",
        "Wow!",
        "Fine. Hmm…",
        'He said "stop."',
        "(It was late.)",
        "नमस्ते दोस्तों।",
        "आप कैसे हैं॥",
        "你好。",
        "我很好！",
        "「行きます。」",
        "Sure thing my friend,",  # the first phrase's early clause end
        "It's **done.**",
    ],
)
def test_a_phrase_end_that_cannot_go_on_is_flushed_at_its_last_token(text: str) -> None:
    splitter = PhraseSplitter()
    pieces = splitter.feed(text) + splitter.flush_complete()
    assert pieces[-1].end
    assert phrases_of(pieces)[-1] == phrases(text)[-1]
    assert not splitter.end_pending


@pytest.mark.parametrize(
    "text",
    [
        "It costs 3.",  # 3.5
        "We open at 5 p.m.",  # "p.m. today" goes on, "p.m. Then" does not
        'He said "stop.',  # the closing quote belongs to the phrase
        "(It was late.",
        "Go to example.com/path?",  # ?x=1
        "Visit example.com.",
        "Is it 3?",
    ],
)
def test_a_sentence_end_that_the_next_character_may_continue_is_held(text: str) -> None:
    splitter = PhraseSplitter()
    pieces = splitter.feed(text) + splitter.flush_complete()
    assert not any(piece.end for piece in pieces)
    assert splitter.end_pending


@pytest.mark.parametrize(
    "text",
    ["I saw Dr.", "Bring fruit, e.g.", "The book by J.", "Options:\n1.", "Let me check", "Hi,"],
)
def test_no_phrase_end_is_held_after_an_abbreviation_an_initial_or_a_plain_word(
    text: str,
) -> None:
    splitter = PhraseSplitter()
    pieces = splitter.feed(text) + splitter.flush_complete()
    assert not any(piece.end for piece in pieces[1:]), pieces
    assert not splitter.end_pending


def test_flush_ends_the_phrase_where_the_text_stands() -> None:
    splitter = PhraseSplitter()
    pieces = splitter.feed("Let me look that up") + splitter.flush()
    pieces += splitter.feed(" and more.") + splitter.finish()
    assert phrases_of(pieces) == ["Let me look that up", "and more."]


def test_closing_marks_right_after_a_flush_are_dropped() -> None:
    splitter = PhraseSplitter()
    pieces = splitter.feed('He said "stop.') + splitter.flush()
    pieces += splitter.feed('" Then?') + splitter.flush() + splitter.feed("!) Ok.")
    assert phrases_of(pieces + splitter.finish()) == ['He said "stop.', "Then?", "Ok."]


def test_a_flush_at_an_unsure_end_splits_there() -> None:
    # what a quiet after "3." costs if the model then goes on with "5"
    splitter = PhraseSplitter()
    pieces = splitter.feed("It costs 3.") + splitter.flush() + splitter.feed("5 dollars.")
    assert phrases_of(pieces + splitter.finish()) == ["It costs 3.", "5 dollars."]


@st.composite
def text_in_words(draw: st.DrawFn) -> tuple[str, list[str]]:
    text = "".join(draw(st.lists(st.sampled_from(_ALPHABET), max_size=60)))
    return text, words(text)


@settings(max_examples=300, deadline=None)
@given(text_in_words())
def test_flushing_complete_ends_at_each_word_delta_gives_the_phrases_of_the_whole_text(
    case: tuple[str, list[str]],
) -> None:
    # A model streams word-sized tokens; ending a phrase at the token that completes it
    # must give exactly the phrases the whole text gives.
    text, deltas = case
    split = eager(deltas)
    assert phrases_of(split) == phrases(text)
    assert all(piece.text.strip() for piece in split)


@pytest.mark.parametrize(
    "deltas",
    [
        ["Let", " me", " check", " the", " weather", " for", " you", "."],
        ["Sure", " thing", " my", " friend", ",", " here", " it", " is", "."],
        ["你", "好", "。", "我", "很", "好", "！"],
        ["It", " costs", " 3", ".", "5", " dollars", "."],
        ["Dr", ".", " Smith", " is", " in", "."],
        ["He", " said", ' "', "stop", '."', " Then", " left", "."],
    ],
    ids=["period-token", "comma-token", "cjk", "number", "abbreviation", "quote"],
)
def test_sub_word_tokens_give_the_phrases_of_the_whole_text(deltas: list[str]) -> None:
    assert phrases_of(eager(deltas)) == phrases("".join(deltas))


def test_the_flushed_pieces_concatenate_to_what_is_spoken() -> None:
    text = "Let me check the weather for you. It is sunny, 18 degrees."
    spoken = "".join(p.text for p in eager(words(text)))
    assert re.sub(r"\s", "", spoken) == re.sub(r"\s", "", text)

"""LLM text deltas → speakable phrases for TTS (sans-IO): one phrase is one TTS request, and
its text streams out word by word before the phrase ends. A phrase ends at the token that
completes it: the turn asks after each delta (`flush_complete`), and `flush()`es a held end
after a quiet or when the model turns to tool calls."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from voiceagent.speakable import CLAUSE_MARKS, CLOSERS, OPENERS, TERMINALS, speak_word

__all__ = ["QUIET_FLUSH_MS", "PhraseSplitter", "PhraseText", "speakable"]

# A held sentence end that the next character could still continue ("3." → "3.5") is taken
# as the end after this long without a delta. Over loopback the Electron fake at a model's
# 20 ms/token delivers deltas 21 ms apart (p99 22 ms alone, 25 ms among 20 streams, rare
# stragglers to 48 ms): 40 ms is about two tokens' time, so a model that is still talking
# is not cut mid-number, while a real pause costs at most 40 ms, and only after such ends.
QUIET_FLUSH_MS = 40.0

_ALWAYS_ENDS = frozenset("!?…।॥。！？")
# Punctuation left alone by a dropped emoji ("great 👍!") joins the word before it.
_ATTACHES = frozenset(TERMINALS + CLAUSE_MARKS + ")]}」』）»”’")
_DASHES = frozenset({"-", "–", "—", "--"})
_ABBREVIATIONS = frozenset(
    {"dr.", "mr.", "mrs.", "ms.", "st.", "vs.", "e.g.", "i.e.", "prof.", "mt.", "fig.", "approx."}
)
# End a sentence only when the next word starts with a capital ("at 5 p.m. Then" vs "p.m. today").
_AMBIGUOUS = frozenset({"etc.", "a.m.", "p.m.", "inc.", "ltd.", "co.", "jr.", "sr."})
_INITIALS = re.compile(r"(?:[a-z]\.)+")
_LINE_MARK = re.compile(r"[-*+•]|\d{1,3}[.)]|#{1,6}")  # list bullet or heading, at a line start
_RULE = re.compile(r"[-*_=]{3,}|[|:\-]*\|[|:\-]*")  # horizontal rule, table separator row
_LINK = re.compile(r"(!?)\[([^\[\]]*)\]\([^()\s]*\)")
_FENCES = ("```", "~~~")
_LINK_LIMIT = 300  # characters of an unfinished link held before giving up on it
_FENCE_LIMIT = 4000  # characters of an unclosed code fence kept to speak if it never closes
# Marks a phrase end waits for when a delta stops right after it, and that a flush drops when
# they come right after it: closing quotes and brackets, more of the end ("?!", "...").
_TRAILING = frozenset(CLOSERS + TERMINALS + CLAUSE_MARKS)
_MARKUP = "*_~`"
_PAIRS = {"(": ")", "{": "}", "“": "”", "«": "»", "「": "」", "『": "』", "（": "）"}
_QUOTES = frozenset('"' + "".join(_PAIRS) + "".join(_PAIRS.values()))


@dataclass(frozen=True, slots=True)
class PhraseText:
    """A piece of speakable text for the current phrase; a phrase's pieces concatenate."""

    text: str
    end: bool  # True: this piece closes the phrase (flush the TTS segment)


class PhraseSplitter:
    """Feeds on text deltas; releases the first phrase at a clause boundary after
    `first_min_words` words, later ones at sentence ends. `finish()` resets it for reuse."""

    def __init__(self, first_min_words: int = 4, language: str = "en") -> None:
        self.first_min_words = first_min_words
        self.language = language  # reserved: symbols are spoken in English for now
        self._keep_gaps = False  # speakable() keeps the space between phrases
        self._reset()

    def _reset(self) -> None:
        self._word: list[str] = []  # the partial token, held until whitespace
        self._gap = False  # whitespace since the last token
        self._newlines = 0  # newlines in the current run of whitespace
        self._line_start = True
        self._unit_line = False  # a list item, heading or table row: its newline ends a phrase
        self._link: str | None = None  # an unfinished [text](url), raw
        self._fence: list[str] | None = None  # an open code fence's content, raw
        self._fence_size = 0
        self._space = False  # whitespace before the next spoken word
        self._held = ""  # the last word: a boundary may yet fall after it
        self._held_ambiguous = False
        self._quotes = ""  # the current phrase's quotes and brackets: is one still open?
        self._flushed = False  # ended by flush(): marks right after it are dropped
        self._has_text = False
        self._words = 0
        self._first_done = False
        self._pending: list[str] = []
        self._out: list[PhraseText] = []

    def feed(self, delta: str) -> list[PhraseText]:
        for ch in delta:
            if ch.isspace():
                if self._word:
                    self._token_done()
                self._gap = True
                self._flushed = False  # what follows is not attached to the flushed end
                if ch == "\n":
                    self._newline()
                continue
            if self._word and _splits(self._word[-1], ch):
                self._token_done()
            if not self._word:
                self._token_start(ch)
            self._word.append(ch)
        return self._take()

    def finish(self) -> list[PhraseText]:
        """The stream has ended: the rest is the last phrase; the splitter starts afresh."""
        out = self.flush()
        self._reset()
        return out

    def flush(self) -> list[PhraseText]:
        """End the current phrase where the text stands (a quiet after a sentence end, or
        the model turned to tool calls); what follows starts a new phrase, less the closing
        marks that come right after the flush (a quote, "!" after "?"), which say nothing."""
        if self._word:
            self._token_done()
        self._flush_link()
        if self._fence is not None:  # never closed: say it rather than lose it
            fence, self._fence = "".join(self._fence), None
            self._speak_raw(fence)
        self._release(end=True)
        if self._pending:  # nothing was held for the end to ride on
            self._end_phrase()
        out = self._take()
        self._flushed = any(piece.end for piece in out)
        return out

    def flush_complete(self) -> list[PhraseText]:
        """The current phrase's end, if the text fed so far completes it for certain (call
        at each delta's end): "…for you." ends now, not when the next token shows a space.
        Nothing when a later character could change it ("3." → "3.5", a closing quote)."""
        return self.flush() if self._held_end() == "complete" else []

    @property
    def end_pending(self) -> bool:
        """A phrase end is held that only the next character can confirm; `flush()` it when
        the stream stays quiet."""
        return self._held_end() is not None

    def _take(self) -> list[PhraseText]:
        if self._pending:
            self._out.append(PhraseText("".join(self._pending), False))
            self._pending.clear()
        out, self._out = self._out, []
        return out

    # Tokens: whitespace-free runs of text, complete once the character after them is known.

    def _token_start(self, ch: str) -> None:
        self._newlines = 0
        # A letter or digit mid-line always yields a spoken word, so no boundary can fall
        # between the held word and it: release the held word now rather than a word later.
        quiet = self._line_start or self._link is not None or self._fence is not None
        if ch.isalnum() and not quiet and not self._held_ambiguous:
            self._release(end=False)

    def _token_done(self) -> None:
        word, gap = "".join(self._word), self._gap
        self._word.clear()
        self._gap = False
        if self._fence is not None:
            if self._line_start and word.startswith(_FENCES):
                self._fence = None  # code is not read aloud
            elif self._fence_size < _FENCE_LIMIT:
                self._fence.append(f" {word}" if gap else word)
                self._fence_size += len(word) + 1
            else:
                self._fence.clear()
            self._line_start = False
            return
        if self._line_start:
            self._line_start = False
            if word.startswith(_FENCES):
                self._fence, self._fence_size = [], 0
                return
            if word == ">":  # a quote marker; a bullet may follow it
                self._line_start = True
                return
            if _LINE_MARK.fullmatch(word):
                self._unit_line = True
                return
            self._unit_line = word.startswith("|")
        if _RULE.fullmatch(word):
            return
        self._markdown_link(word, gap)

    def _newline(self) -> None:
        self._newlines += 1
        self._line_start = True
        if self._fence is not None:
            return
        self._flush_link()
        ends_line = self._unit_line or self._held.endswith(":")
        if self._newlines == 2 or (self._newlines == 1 and ends_line):
            self._release(end=True)
        self._unit_line = False

    # Links: "[text](url)" may span tokens; hold it until it closes, within bounds.

    def _markdown_link(self, word: str, gap: bool) -> None:
        raw = f" {word}" if gap else word
        if self._link is None:
            if "[" not in word:
                self._word_out(speak_word(word), gap)
                return
            self._link = ""
        self._link += raw
        ends = word.rstrip(CLOSERS)[-1:] in TERMINALS
        if _link_open(self._link) and not ends and len(self._link) <= _LINK_LIMIT:
            return
        self._flush_link()

    def _flush_link(self) -> None:
        if self._link is not None:
            link, self._link = self._link, None
            self._speak_raw(link)

    def _speak_raw(self, text: str) -> None:
        text = _LINK.sub(lambda m: "" if m.group(1) else m.group(2), text)  # images dropped
        for m in re.finditer(r"(\s*)(\S+)", text):
            self._word_out(speak_word(m.group(2)), bool(m.group(1)))

    # Phrases: where boundaries fall among spoken words.

    def _word_out(self, text: str, gap: bool) -> None:
        if not text:
            self._space = self._space or gap
            return
        space, self._space = self._space or gap, False
        flushed, self._flushed = self._flushed, False
        if flushed and not space and _TRAILING.issuperset(text):
            return  # the end of the phrase just flushed
        if self._held_ambiguous:
            first = next((c for c in text if c.isalnum()), "")
            self._release(end=not (first.islower() or first.isdigit()))
        else:
            self._release(end=False)
        if space and text[0] not in _ATTACHES and (self._has_text or self._keep_gaps):
            text = f" {text}"
        self._has_text = True
        self._words += sum(any(c.isalnum() for c in t) for t in text.split())
        self._held = text
        kind = _boundary(text)
        if kind == "ambiguous":
            self._held_ambiguous = True
        elif kind == "sentence" or (
            kind == "clause" and not self._first_done and self._words >= self.first_min_words
        ):
            self._release(end=True)

    def _release(self, end: bool) -> None:
        text, self._held, self._held_ambiguous = self._held, "", False
        if text:
            self._pending.append(text)
            self._quotes += "".join(c for c in text if c in _QUOTES)
        # With nothing held, an end has no text to ride on; the phrase runs on instead.
        if end and text:
            self._end_phrase()

    def _end_phrase(self) -> None:
        self._out.append(PhraseText("".join(self._pending), True))
        self._pending.clear()
        self._has_text, self._words, self._first_done = False, 0, True
        self._quotes = ""

    # Ends at a delta's end: would the partial token end the phrase once it is complete,
    # and can nothing that follows it change that?

    def _held_end(self) -> str | None:
        """ "complete", "unsure" (the next character decides), or None (no end is held)."""
        if self._link is not None or self._fence is not None:
            return None
        if not self._word:
            return "unsure" if self._held_ambiguous else None
        if self._word[-1] not in _TRAILING and self._word[-1] not in _MARKUP:
            return None  # most deltas end mid-sentence: no end marks, nothing to work out
        word = "".join(self._word)
        if self._line_start and (
            word.startswith(_FENCES) or word == ">" or _LINE_MARK.fullmatch(word)
        ):
            return None  # a code fence, a quote marker, a list bullet: not words
        if "[" in word or _RULE.fullmatch(word):
            return None
        text = speak_word(word)
        if not text:
            return None
        kind = _boundary(text)
        if kind == "ambiguous":
            return "unsure"  # "p.m." ends a sentence only before a capital
        words, first_done = self._words, self._first_done
        if self._held_ambiguous:  # released before this word, maybe as the end of a phrase
            first = next((c for c in text if c.isalnum()), "")
            if not (first.islower() or first.isdigit()):
                words, first_done = 0, True
        words += sum(any(c.isalnum() for c in t) for t in text.split())
        if not (
            kind == "sentence"
            or (kind == "clause" and not first_done and words >= self.first_min_words)
        ):
            return None
        if not _cannot_continue(word) or _open_quote(self._quotes + self._held + text):
            return "unsure"
        return "complete"


def speakable(text: str) -> str:
    """The whole text as it is spoken: the phrases of `PhraseSplitter`, joined."""
    splitter = PhraseSplitter()
    splitter._keep_gaps = True
    pieces = [*splitter.feed(text), *splitter.finish()]
    return "".join(p.text for p in pieces).strip()


def _splits(before: str, ch: str) -> bool:
    # CJK has no spaces and a danda may have none after it: end tokens there without one.
    if ch in CLOSERS:
        return False
    return before in "।॥" or _is_cjk(before) or _is_cjk(ch)


def _is_cjk(c: str) -> bool:
    o = ord(c)
    return (
        0x3000 <= o <= 0x30FF  # punctuation, kana
        or 0x3400 <= o <= 0x4DBF
        or 0x4E00 <= o <= 0x9FFF
        or 0xF900 <= o <= 0xFAFF
        or 0xFF00 <= o <= 0xFFEF  # full-width forms: ！？，
        or 0x20000 <= o <= 0x2FFFF
    )


def _cannot_continue(word: str) -> bool:
    """No character after this token could make it go on: its end marks follow a plain
    word ("you.", "friend,", "हैं।"), not a number, URL or abbreviation ("3." may be "3.5",
    "example.com/path?" may go on with "x=1"); a CJK mark ends whatever comes before it."""
    rest = word.rstrip(CLOSERS + _MARKUP)
    stem = rest.rstrip("".join(_TRAILING))
    marks = rest[len(stem) :]
    stem = stem.lstrip(OPENERS + _MARKUP)
    if not stem:
        return bool(marks) and marks[-1] in "。！？।॥"
    return all(unicodedata.category(c)[0] in "LM" or c in "'’-" for c in stem)


def _open_quote(text: str) -> bool:
    """A quote or bracket is open: its closer may come next."""
    if text.count('"') % 2:
        return True
    return any(text.count(opener) > text.count(closer) for opener, closer in _PAIRS.items())


def _link_open(raw: str) -> bool:
    rest = _LINK.sub("", raw)
    start = rest.rfind("[")
    if start < 0:
        return False
    rest = rest[start:]
    close = rest.find("]")
    if close < 0:
        return True  # inside the link's text
    url = rest[close + 1 :]
    return url.startswith("(") and ")" not in url and not any(c.isspace() for c in url)


def _boundary(text: str) -> str:
    last = text.split()[-1]
    core = last.rstrip(CLOSERS)
    if not core:
        return ""
    if core[-1] in _ALWAYS_ENDS:
        return "sentence"
    if core[-1] == ".":
        bare = core.lstrip(OPENERS).lower()
        if bare in _AMBIGUOUS:
            return "ambiguous"
        if bare in _ABBREVIATIONS or _INITIALS.fullmatch(bare):
            return ""
        return "sentence"
    if core[-1] in CLAUSE_MARKS or last in _DASHES:
        return "clause"
    return ""

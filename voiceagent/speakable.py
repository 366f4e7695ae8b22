"""Makes one whitespace-free token of LLM text speakable: inline markdown, URLs, emails,
symbols and emojis. `voiceagent.phrases` handles what spans tokens (lines, links, fences)."""

from __future__ import annotations

import re
import unicodedata

OPENERS = "\"'“‘«「『（([{<¿¡"
CLOSERS = "\"'”’»」』）)]}>"
TERMINALS = ".!?…।॥。！？"
CLAUSE_MARKS = ",;:，；：、"

_TLDS = "com|org|net|io|ai|dev|co|edu|gov|in|uk|us|app|info|me|tv|xyz|ly|gg|so|sh|fm|tech|cloud"
_URL = re.compile(
    rf"(?i)(?:https?://|www\.)\S+|(?:[a-z0-9-]+\.)+(?:{_TLDS})(?:[/:?#]\S*)?",
)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_EDGE_UNDERSCORES = re.compile(r"(?<!\w)_+|_+(?!\w)")
_CURRENCY = re.compile(r"([$€£₹¥])(\d[\d,]*(?:\.\d+)?)")
_CURRENCY_NAMES = {
    "$": ("dollar", "dollars"),
    "€": ("euro", "euros"),
    "£": ("pound", "pounds"),
    "₹": ("rupee", "rupees"),
    "¥": ("yen", "yen"),
}
# Applied in order to what is left once URLs and emails are ruled out.
_SYMBOLS = (
    (re.compile(r"#(?=\d)"), "number "),
    (re.compile(r"#"), ""),
    (re.compile(r"°C(?![a-z])"), " degrees Celsius"),
    (re.compile(r"°F(?![a-z])"), " degrees Fahrenheit"),
    (re.compile(r"°"), " degrees"),
    (re.compile(r"%"), " percent"),
    (re.compile(r"&"), " and "),
    (re.compile(r"(?<=\d)\+(?=\d)|^\+$"), " plus "),
    (re.compile(r"="), " equals "),
    (re.compile(r"\|"), " "),
)
# Joiners and modifiers that are left behind when the emoji around them is dropped.
_EMOJI_PARTS = frozenset("\ufe0e\ufe0f\u200d\u20e3") | {chr(c) for c in range(0x1F3FB, 0x1F400)}


def speak_word(word: str) -> str:
    """The speakable form of one token (no whitespace inside); "" when nothing is left to say."""
    word = re.sub(r"(?<=\d)\*(?=\d)", " times ", word)
    word = word.replace("`", "").replace("*", "").replace("~~", "")
    word = word.replace("[", "").replace("]", "")
    word = "".join(c for c in word if not _is_emoji(c))
    word = _EDGE_UNDERSCORES.sub("", word)
    rest = word.lstrip(OPENERS)
    lead = word[: len(word) - len(rest)]
    core = rest.rstrip(CLOSERS + TERMINALS + CLAUSE_MARKS)
    trail = rest[len(core) :]
    if _EMAIL.fullmatch(core):
        core = core.replace("@", " at ").replace(".", " dot ")
    elif _URL.fullmatch(core):
        core = _say_url(core)
    else:
        core = _CURRENCY.sub(_say_money, core)
        for pattern, spoken in _SYMBOLS:
            core = pattern.sub(spoken, core)
    return " ".join(f"{lead}{core}{trail}".split())


def _is_emoji(c: str) -> bool:
    # "°" is a symbol too, but it is spoken ("degrees"), so it stays for _SYMBOLS.
    return c != "°" and (unicodedata.category(c) in ("So", "Cs") or c in _EMOJI_PARTS)


def _say_url(url: str) -> str:
    # Scheme, "www.", query and fragment are noise when heard; the host and path are not.
    bare = re.sub(r"(?i)^(?:https?://)?(?:www\.)?", "", url)
    bare = re.split(r"[?#]", bare, maxsplit=1)[0].rstrip("/") or url
    return bare.replace(".", " dot ").replace("/", " slash ")


def _say_money(match: re.Match[str]) -> str:
    one, many = _CURRENCY_NAMES[match.group(1)]
    amount = match.group(2)
    return f"{amount} {one if amount == '1' else many}"

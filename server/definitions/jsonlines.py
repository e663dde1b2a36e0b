"""The line each value of a JSON text starts on, by JSON Pointer (to point errors at lines)."""

from __future__ import annotations

import json
import re

_WS = re.compile(r"[ \t\n\r]*")
_decoder = json.JSONDecoder()


def pointer_lines(text: str) -> dict[str, int]:
    """Map each JSON Pointer of a (valid) JSON text to the 1-based line its value starts on."""
    out: dict[str, int] = {}
    try:
        _value(text, _WS.match(text, 0).end(), "", out)
    except (ValueError, IndexError):
        pass
    return out


def _line(text: str, at: int) -> int:
    return text.count("\n", 0, at) + 1


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _value(text: str, at: int, where: str, out: dict[str, int]) -> int:
    """Record the value at `at` (and its children); return the index just after it."""
    out[where] = _line(text, at)
    char = text[at]
    if char == "{":
        at = _WS.match(text, at + 1).end()
        if text[at] == "}":
            return at + 1
        while True:
            key, at = _decoder.raw_decode(text, at)
            at = _WS.match(text, at).end() + 1  # the colon
            at = _WS.match(text, at).end()
            at = _value(text, at, f"{where}/{_escape(key)}", out)
            at = _WS.match(text, at).end()
            if text[at] == "}":
                return at + 1
            at = _WS.match(text, at + 1).end()
    if char == "[":
        at = _WS.match(text, at + 1).end()
        if text[at] == "]":
            return at + 1
        index = 0
        while True:
            at = _value(text, at, f"{where}/{index}", out)
            index += 1
            at = _WS.match(text, at).end()
            if text[at] == "]":
                return at + 1
            at = _WS.match(text, at + 1).end()
    _, end = _decoder.raw_decode(text, at)
    return end

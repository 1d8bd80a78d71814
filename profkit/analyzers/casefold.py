"""Case-insensitive name patterns run as case-sensitive ones over the lowercased name.

Python's ``re`` under IGNORECASE compares character by character and skips the
literal-prefix search it uses otherwise: on kernel names (hundreds of
characters) a ``(?i)a|b|c`` alternation is ~8x slower than the same pattern in
lower case over ``name.lower()``. For an ASCII name both read the same: ASCII
case folding maps A-Z to a-z and nothing else, so a pattern whose only
case-dependent parts are letters matches the lowered name exactly where the
``(?i)`` one matches the name. ``lowered_form`` derives that pattern, and
declines (None) any pattern where lowering could change the meaning: escapes
other than punctuation and ``\\w \\d \\s \\b``, flag groups, ranges in classes.

``alternatives`` splits a pattern into its top-level alternatives, each compiled
alone: a whole ``a|^b|c`` is tried at every position of the text, but an
alternative on its own gets ``re``'s literal-prefix scan or its anchor test (a
leading lookbehind moves behind the word it guards, ``(?<!x)c`` -> ``c(?<!xc)``).
"""

from __future__ import annotations

import re

import numpy as np

#: Escapes that mean the same in lower case: character classes whose letter is already lower
#: case, and escaped punctuation.
_SAME_ESCAPES = frozenset("wdsb") | frozenset(r".()[]{}$^*+?|\-/:<>_=!#&~,;'\"% @")
#: Group openings after "(?" that set no flag.
_PLAIN_GROUPS = (":", "<!", "<=", "=", "!", "P<", "P=")


def lowered_form(regex: re.Pattern) -> re.Pattern | None:
    """A case-sensitive pattern that ``search``es ``name.lower()`` as ``regex`` searches an ASCII
    ``name`` (same match positions), or None when ``regex`` is not a plain ``(?i)`` pattern."""
    key = regex.pattern
    if not (isinstance(key, str) and key.startswith("(?i)") and key.isascii()) or not _lowerable(key[4:]):
        return None
    return re.compile(key[4:].lower(), regex.flags & ~re.IGNORECASE)


def _lowerable(body: str) -> bool:
    """Whether lowering ``body``'s letters keeps its meaning over lower-case text."""
    in_class = False
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            if body[i + 1:i + 2] not in _SAME_ESCAPES:  # ("" at the end: not in it)
                return False
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
            elif ch == "-" and body[i - 1] != "[" and body[i + 1:i + 2] != "]":
                return False  # a range: [A-z] also holds punctuation between the cases
        elif ch == "[":
            in_class = True
            if body[i + 1:i + 2] == "]":  # a leading ] is a member
                i += 1
        elif ch == "(" and body[i + 1:i + 2] == "?" and not body.startswith(_PLAIN_GROUPS, i + 2):
            return False  # an inline flag group
        i += 1
    return not in_class


def search(regex: re.Pattern, lowered: re.Pattern | None, name: str) -> bool:
    """Whether ``regex`` finds a match in ``name``, through ``lowered`` (its ``lowered_form``) when it
    has one and the name is ASCII."""
    if lowered is not None and name.isascii():
        return lowered.search(name.lower()) is not None
    return regex.search(name) is not None


#: An alternative that opens with a lookbehind on a word, then a word: ``(?<!fb)gemm...``. Written
#: ``gemm(?<!fbgemm)...`` it matches at the same places (the word is there, so the text before it is
#: tested just the same), and re scans for the word instead of trying the lookbehind at every position.
_LOOKBEHIND_FIRST = re.compile(r"^\(\?<([!=])(\w+)\)(\w+)")


def alternatives(regex: re.Pattern) -> tuple[re.Pattern, ...]:
    """``regex``'s top-level alternatives, each compiled alone with its flags: ``any(a.search(text) for a
    in alternatives(regex))`` is ``regex.search(text) is not None`` (which alternative and where aside),
    several times faster on long names. ``(regex,)`` when it has one alternative, or anything a split
    could change: flag groups and comments, back-references, conditionals."""
    key = regex.pattern
    if not isinstance(key, str) or re.search(r"\\[1-9]|\(\?(?:P=|\()", key) or regex.flags & re.VERBOSE:
        return (regex,)
    branches, start, depth, in_class, i = [], 0, 0, False, 0
    while i < len(key):
        ch = key[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
            i += 1 + (key[i + 1:i + 2] == "^")
            i += key[i:i + 1] == "]"  # a leading ] is a member
            continue
        elif ch == "(":
            if key[i + 1:i + 2] == "?" and not key.startswith(_PLAIN_GROUPS, i + 2):
                return (regex,)  # a flag group or a comment
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            branches.append(key[start:i])
            start = i + 1
        i += 1
    branches.append(key[start:])
    if len(branches) < 2:
        return (regex,)
    try:
        return tuple(re.compile(_LOOKBEHIND_FIRST.sub(r"\3(?<\1\2\3)", branch, count=1), regex.flags)
                     for branch in branches)
    except re.error:  # pragma: no cover - every alternative of a valid pattern compiles
        return (regex,)


# ---------------------------------------------------------------- many names, one scan

#: What can match a newline or anchor at the whole text's ends: a pattern holding one is not read line by line.
_CROSSES_LINES = re.compile(r"\\[sSWDAZn]|\[\^")


def line_form(regex: re.Pattern) -> re.Pattern | None:
    """``regex`` over "\n" + names joined by newlines (``joined_lines``): it matches where it matches a
    name alone, the match starting inside that name or, for a pattern anchored at the start, at the
    newline before it (``^x`` is read as ``\nx``: re scans for the newline instead of trying ``^`` at
    every position). ^ and $ elsewhere hold at each line's ends. None when the pattern could match a
    newline: negated classes, \\s \\S \\W \\D, whole-text anchors, DOTALL."""
    if regex.flags & re.DOTALL or _CROSSES_LINES.search(regex.pattern):
        return None
    key = regex.pattern
    return re.compile("\n" + key[1:] if key.startswith("^") else key, regex.flags | re.MULTILINE)


def joined_lines(names: list[str]) -> tuple[str, np.ndarray] | None:
    """"\n" + ``names`` joined by newlines, and where each name starts in it; None when a line would
    not be one name (no names, a non-ASCII name, a name holding a newline): test them one by one."""
    joined = "\n".join(names)
    if not names or not joined.isascii() or joined.count("\n") != len(names) - 1:
        return None
    lengths = np.fromiter(map(len, names), dtype=np.int64, count=len(names))
    return "\n" + joined, np.concatenate(([1], 1 + np.cumsum(lengths + 1)[:-1]))


def line_owner(starts: np.ndarray, positions) -> np.ndarray:
    """The name each position of a ``joined_lines`` text lies in (a name's end counts as in it; a
    ``line_form`` match anchored at a newline: pass its start + 1)."""
    return np.searchsorted(starts, positions, side="right") - 1

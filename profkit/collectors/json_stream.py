"""Read a large JSON document member by member without holding it all.

A Chrome trace is one object whose ``traceEvents`` array holds nearly all of
the bytes. ``iter_members`` yields the top-level members in file order; the
value of the streamed array member is a lazy iterator of its items, decoded
one at a time from a sliding text window (a few MiB), so memory stays about
one window plus what the caller keeps of each item. Decoding uses the C
scanner of the standard ``json`` module: as fast as ``json.loads``.

A top-level array (Chrome's "JSON Array Format", whose closing bracket is
optional) is yielded as the streamed member.
"""

from __future__ import annotations

import codecs
import json
import re
from typing import IO, Any, Callable, Iterator

from ..errors import TraceImportError

_CHUNK_BYTES = 8 << 20  # read this much at a time
_MARGIN_CHARS = 1 << 20  # keep at least this much text ahead of the cursor when possible
_MAX_VALUE_CHARS = 256 << 20  # one item larger than this is taken as malformed, not truncated
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


class JsonStream:
    """A cursor over a binary file of UTF-8 JSON, refilled chunk by chunk."""

    def __init__(self, binary: IO[bytes], name: str, on_read: Callable[[], None] | None = None):
        self._file = binary
        self._name = name
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._on_read = on_read
        self.buf = ""
        self.pos = 0
        self.offset = 0  # characters dropped before ``buf``
        self.eof = False

    def _fill(self) -> None:
        try:
            data = self._file.read(_CHUNK_BYTES)
            text = self._utf8.decode(data, final=not data)
        except UnicodeDecodeError:
            raise TraceImportError(f"{self._name}: not UTF-8 text, so not a JSON trace") from None
        except (OSError, EOFError) as exc:  # gzip: truncated or corrupt stream
            raise TraceImportError(f"{self._name}: cannot read ({_first_line(exc)})") from None
        if not data:
            self.eof = True
        self.offset += self.pos
        self.buf = self.buf[self.pos :] + text
        self.pos = 0
        if self._on_read is not None:
            self._on_read()

    def peek(self) -> str:
        """The next non-blank character ('' at the end of the file)."""
        while True:
            self.pos = _WHITESPACE.match(self.buf, self.pos).end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if self.eof:
                return ""
            self._fill()

    def expect(self, char: str, what: str) -> None:
        if self.peek() != char:
            self.fail(f"expected {what}")
        self.pos += 1

    def value(self) -> Any:
        """Decode the JSON value at the cursor and step past it."""
        self.peek()
        while True:
            if not self.eof and len(self.buf) - self.pos < _MARGIN_CHARS:
                self._fill()
                continue
            try:
                obj, end = _DECODER.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                # A value cut by the window's end: read on. At the end of the file, or
                # far past any plausible item size, the text itself is bad.
                if self.eof or len(self.buf) - self.pos > _MAX_VALUE_CHARS:
                    self.fail(exc.msg, exc.pos)
                self._fill()
                continue
            if end == len(self.buf) and not self.eof:  # a number may continue in the next chunk
                self._fill()
                continue
            self.pos = end
            return obj

    def fail(self, message: str, pos: int | None = None) -> None:
        where = self.offset + (self.pos if pos is None else pos)
        raise TraceImportError(f"{self._name}: malformed JSON at character {where}: {message}")


def iter_members(stream: JsonStream, streamed_key: str) -> Iterator[tuple[str, Any]]:
    """Top-level ``(key, value)`` pairs; ``streamed_key``'s value is an iterator of its items.

    The caller must exhaust that iterator before asking for the next member
    (unexhausted items are skipped).
    """
    first = stream.peek()
    if first == "[":
        yield streamed_key, iter_array(stream, closing_optional=True)
        return
    if first != "{":
        stream.fail("a trace is a JSON object or array" if first else "empty file")
    stream.pos += 1
    if stream.peek() == "}":
        stream.pos += 1
        return
    while True:
        key = stream.value()
        if not isinstance(key, str):
            stream.fail("expected a member name")
        stream.expect(":", "':' after a member name")
        if key == streamed_key and stream.peek() == "[":
            items = iter_array(stream)
            yield key, items
            for _ in items:  # the caller stopped early: skip the rest
                pass
        else:
            yield key, stream.value()
        char = stream.peek()
        if char == ",":
            stream.pos += 1
        elif char == "}":
            stream.pos += 1
            return
        else:
            stream.fail("expected ',' or '}' between members")


def iter_array(stream: JsonStream, *, closing_optional: bool = False) -> Iterator[Any]:
    """Items of the array at the cursor, decoded one by one."""
    stream.expect("[", "'['")
    if stream.peek() == "]":
        stream.pos += 1
        return
    while True:
        yield stream.value()
        char = stream.peek()
        if char == ",":
            stream.pos += 1
            if closing_optional and stream.peek() == "":  # "...},\n" then the end: allowed
                return
        elif char == "]":
            stream.pos += 1
            return
        elif char == "" and closing_optional:
            return
        else:
            stream.fail("expected ',' or ']' between items")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__

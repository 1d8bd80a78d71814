"""Read a large JSON document member by member without holding it all.

A Chrome trace is one object whose ``traceEvents`` array holds nearly all of
the bytes. ``iter_members`` yields the top-level members in file order; the
value of the streamed array member is a lazy iterator of its items, decoded
from a sliding text window (256 KB), so memory stays about one window
plus what the caller keeps of each item. Each window's complete items are
decoded in one call (the slice up to the last ``}`` that ``, {`` follows,
parsed as an array: if that cut was inside a string the parse fails, and an
earlier cut is tried, then item by item), by ``orjson`` where installed, else
by the C scanner of the standard ``json`` module. Decoding a window at once
matters for the callers: they turn each list of items into columns, and a
list per item costs ~12x more (measured without orjson, the H100 trace: 6.0
-> 0.5 s).

A top-level array (Chrome's "JSON Array Format", whose closing bracket is
optional) is yielded as the streamed member.
"""

from __future__ import annotations

import codecs
import json
import re
from typing import IO, Any, Callable, Iterator

from ..errors import TraceImportError

_CHUNK_BYTES = 256 << 10  # read this much at a time (measured: larger windows are no faster, and cost memory)
# Keep at least this much text ahead of the cursor when possible. Half a chunk: with a whole one,
# the first window after the header held two chunks (measured: 1835 events at once in a rank
# file, +4.7 MB of peak RSS for nothing).
_MARGIN_CHARS = 128 << 10
_MAX_VALUE_CHARS = 256 << 20  # one item larger than this is taken as malformed, not truncated
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()
_CUT_TRIES = 4  # cuts tried per window before decoding its items one by one

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None


def _loads(text: str) -> Any:
    """Decode a JSON text: orjson (about 2x faster) where installed, else the standard library's C scanner."""
    return json.loads(text) if _orjson is None else _orjson.loads(text)


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
        self._batch_after = 0  # absolute position before which batch decoding failed once

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
                # A value cut by the window's end (the error is at the end, or in a string
                # still open there): read on. Anywhere else, or at the end of the file, or far
                # past any plausible item size, the text itself is bad.
                cut_off = exc.pos >= len(self.buf) - 1 or exc.msg.startswith("Unterminated string")
                if self.eof or not cut_off or len(self.buf) - self.pos > _MAX_VALUE_CHARS:
                    self.fail(exc.msg, exc.pos)
                self._fill()
                continue
            if end == len(self.buf) and not self.eof:  # a number may continue in the next chunk
                self._fill()
                continue
            self.pos = end
            return obj

    def batch(self) -> list | None:
        """The complete items from the cursor to near the window's end, decoded at once (or None)."""
        if self.offset + self.pos < self._batch_after:
            return None
        if not self.eof and len(self.buf) - self.pos < _MARGIN_CHARS:
            self._fill()
        end = len(self.buf)
        for _ in range(_CUT_TRIES):
            cut = self._items_end(end)
            if cut < 0:
                break
            try:
                items = _loads("[" + self.buf[self.pos : cut] + "]")
            except ValueError:  # the cut was inside a string (a kernel name's "}, {"); for orjson, NaN, a huge integer...
                end = cut - 1
                continue
            self.pos = cut
            return items
        self._batch_after = self.offset + len(self.buf)  # one by one through this window
        return None

    def _items_end(self, end: int) -> int:
        """Index just past the last '}' before ``end`` that ', {' follows: maybe where an object item ends."""
        while True:
            brace = self.buf.rfind("}", self.pos, end)
            if brace < 0:
                return -1
            comma = _WHITESPACE.match(self.buf, brace + 1).end()
            if comma < len(self.buf) and self.buf[comma] == ",":
                after = _WHITESPACE.match(self.buf, comma + 1).end()
                if after < len(self.buf) and self.buf[after] == "{":
                    return brace + 1
            end = brace

    def fail(self, message: str, pos: int | None = None) -> None:
        where = self.offset + (self.pos if pos is None else pos)
        raise TraceImportError(f"{self._name}: malformed JSON at character {where}: {message}")


def iter_members(stream: JsonStream, streamed_key: str) -> Iterator[tuple[str, Any]]:
    """Top-level ``(key, value)`` pairs; ``streamed_key``'s value is an iterator of lists of its items.

    The caller must exhaust that iterator before asking for the next member
    (unexhausted items are skipped).
    """
    first = stream.peek()
    if first == "[":
        yield streamed_key, iter_array_chunks(stream, closing_optional=True)
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
            items = iter_array_chunks(stream)
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


def iter_array_chunks(stream: JsonStream, *, closing_optional: bool = False) -> Iterator[list]:
    """Items of the array at the cursor, in lists: a window's worth at a time, or one by one."""
    stream.expect("[", "'['")
    if stream.peek() == "]":
        stream.pos += 1
        return
    while True:
        items = stream.batch()
        yield items if items else [stream.value()]
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

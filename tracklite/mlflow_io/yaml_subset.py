"""A small reader for the subset of YAML that MLflow's file store writes.

MLflow writes ``meta.yaml`` with PyYAML's ``safe_dump`` in block style, so what occurs in practice
is: block mappings (nested ones in MLflow 3 experiment meta), indentless block sequences, empty
flow collections (``tags: []``, ``tags: {}``), plain, single- and double-quoted scalars (long ones
folded over several lines) and, rarely, block scalars. All of that is read here. Scalars are
resolved the way PyYAML resolves them (YAML 1.1: ``yes``/``on`` are booleans, ``0755`` is octal,
``1e3`` without a dot is a string), because that is the resolver the writer quoted against.

Not supported: aliases, complex (``?``) keys, multiple documents. A nested block this parser cannot
read becomes :class:`Unparsed` instead of failing the whole file, since readers only need a few
top-level keys; an unreadable *top-level* line raises :class:`YamlSubsetError`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TypeAlias

__all__ = ["Unparsed", "YamlSubsetError", "YamlValue", "parse_mapping", "resolve_plain"]


@dataclass(frozen=True)
class Unparsed:
    """A nested block that could not be read; kept as raw text so callers can ignore it."""

    text: str
    reason: str


YamlValue: TypeAlias = (
    "bool | int | float | str | list[YamlValue] | dict[str, YamlValue] | Unparsed | None"
)


class YamlSubsetError(ValueError):
    """The text is not YAML this parser understands; ``lineno`` is 1-based."""

    def __init__(self, message: str, lineno: int) -> None:
        super().__init__(f"line {lineno}: {message}")
        self.lineno = lineno


class _Incomplete(Exception):
    """A quoted scalar or flow collection continues past the text scanned so far."""


_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_TRUES = frozenset({"yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"})
_FALSES = frozenset({"no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"})
_INT_RE = re.compile(r"[-+]?(?:0b[01_]+|0x[0-9a-fA-F_]+|0[0-7_]+|0|[1-9][0-9_]*)")
_FLOAT_RE = re.compile(
    r"[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?"
    r"|\.[0-9_]+(?:[eE][-+][0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)"
    r"|\.(?:nan|NaN|NAN)"
)
_ESCAPES = {
    "0": "\0", "a": "\a", "b": "\b", "t": "\t", "\t": "\t", "n": "\n", "v": "\v", "f": "\f",
    "r": "\r", "e": "\x1b", " ": " ", '"': '"', "/": "/", "\\": "\\", "N": "\x85",
    "_": "\xa0", "L": "\u2028", "P": "\u2029",
}  # fmt: skip
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}
_FLOW_STOP = ",[]{}"


def resolve_plain(text: str) -> bool | int | float | str | None:
    """Resolve an unquoted scalar to null, bool, int, float or str, as PyYAML's resolver does."""
    if text in _NULLS:
        return None
    if text in _TRUES:
        return True
    if text in _FALSES:
        return False
    first = text[0]
    if not (first.isdigit() or first in "+-."):
        return text
    digits = text.replace("_", "")
    try:
        if _INT_RE.fullmatch(text):
            sign = -1 if digits[0] == "-" else 1
            digits = digits.lstrip("+-")
            if digits.startswith("0b"):
                return sign * int(digits[2:], 2)
            if digits.startswith("0x"):
                return sign * int(digits[2:], 16)
            if len(digits) > 1 and digits[0] == "0":
                return sign * int(digits, 8)
            return sign * int(digits)
        if _FLOAT_RE.fullmatch(text):
            lowered = digits.lower()
            if lowered.endswith(".inf"):
                return float("-inf") if lowered[0] == "-" else float("inf")
            if lowered == ".nan":
                return float("nan")
            return float(lowered)
    except ValueError:
        pass  # matches the pattern but only through underscores ("0x_", "._"): a string
    return text


def _indent_of(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _is_blank(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped[0] == "#"


def _is_seq_item(content: str) -> bool:
    return content == "-" or content.startswith(("- ", "-\t"))


def _key_colon(content: str) -> int:
    """Index of the ':' that ends a plain key in ``content``, or -1 if it is not a key line."""
    i = content.find(":")
    while i != -1:
        if i + 1 == len(content) or content[i + 1] in " \t":
            # a comment before the colon means this was never a key
            hash_at = content.find(" #", 0, i)
            return -1 if hash_at != -1 else i
        i = content.find(":", i + 1)
    return -1


def _is_mapping_line(content: str) -> bool:
    """Whether ``content`` starts a ``key: value`` entry (plain or quoted key)."""
    if content[0] in "\"'":
        try:
            end = _scan_quoted(content, 0)[1]
        except (_Incomplete, ValueError):
            return False
        rest = content[end:].lstrip(" \t")
        return rest == ":" or rest.startswith((": ", ":\t"))
    if content[0] in "[{":
        return False
    return _key_colon(content) > 0


def _strip_comment(text: str) -> str:
    """Cut a trailing `` # comment`` off a plain scalar (a '#' inside a word is content)."""
    for marker in (" #", "\t#"):
        at = text.find(marker)
        if at != -1:
            text = text[:at]
    return text.rstrip()


def _scan_quoted(s: str, i: int) -> tuple[str, int]:
    """Scan a quoted scalar starting at ``s[i]``; return its value and the index after it.

    Newlines in ``s`` are line breaks of the source: they fold to a space, or to ``n-1``
    newlines for ``n`` consecutive breaks, as YAML's flow scalar folding says.
    """
    quote = s[i]
    out: list[str] = []
    i += 1
    n = len(s)
    while True:
        if i >= n:
            raise _Incomplete
        c = s[i]
        if c == quote:
            if quote == "'" and i + 1 < n and s[i + 1] == "'":
                out.append("'")
                i += 2
                continue
            return "".join(out), i + 1
        if c == "\\" and quote == '"':
            if i + 1 >= n:
                raise _Incomplete
            e = s[i + 1]
            if e == "\n":  # escaped line break: join the lines with nothing in between
                i += 2
                while i < n and s[i] in " \t":
                    i += 1
                continue
            if e in _ESCAPES:
                out.append(_ESCAPES[e])
                i += 2
                continue
            width = _HEX_ESCAPES.get(e)
            if width is None:
                raise ValueError(f"unknown escape \\{e}")
            code = s[i + 2 : i + 2 + width]
            if len(code) < width:
                raise _Incomplete
            try:
                out.append(chr(int(code, 16)))
            except ValueError:
                raise ValueError(f"bad escape \\{e}{code}") from None
            i += 2 + width
            continue
        if c == "\n":
            while out and out[-1] in " \t":
                out.pop()
            breaks = 0
            while i < n and s[i] in " \t\n":
                if s[i] == "\n":
                    breaks += 1
                i += 1
            out.append("\n" * (breaks - 1) if breaks > 1 else " ")
            continue
        out.append(c)
        i += 1


def _skip_flow_space(s: str, i: int) -> int:
    n = len(s)
    while i < n:
        c = s[i]
        if c in " \t\n":
            i += 1
        elif c == "#" and (i == 0 or s[i - 1] in " \t\n"):
            end = s.find("\n", i)
            i = n if end == -1 else end
        else:
            break
    return i


def _scan_flow(s: str, i: int) -> tuple[YamlValue, int]:
    """Scan one flow node (``[..]``, ``{..}``, quoted or plain scalar) starting at ``s[i]``."""
    i = _skip_flow_space(s, i)
    if i >= len(s):
        raise _Incomplete
    c = s[i]
    if c in "\"'":
        return _scan_quoted(s, i)
    if c == "[":
        items: list[YamlValue] = []
        i = _skip_flow_space(s, i + 1)
        while True:
            if i >= len(s):
                raise _Incomplete
            if s[i] == "]":
                return items, i + 1
            item, i = _scan_flow(s, i)
            items.append(item)
            i = _skip_flow_space(s, i)
            if i >= len(s):
                raise _Incomplete
            if s[i] == ",":
                i = _skip_flow_space(s, i + 1)
            elif s[i] != "]":
                raise ValueError(f"expected ',' or ']' in flow sequence, found {s[i]!r}")
    if c == "{":
        mapping: dict[str, YamlValue] = {}
        i = _skip_flow_space(s, i + 1)
        while True:
            if i >= len(s):
                raise _Incomplete
            if s[i] == "}":
                return mapping, i + 1
            key, i = _scan_flow(s, i)
            if isinstance(key, (list, dict, Unparsed)):
                raise ValueError("collection used as a flow mapping key")
            i = _skip_flow_space(s, i)
            value: YamlValue = None
            if i < len(s) and s[i] == ":":
                value, i = _scan_flow(s, i + 1)
                i = _skip_flow_space(s, i)
            mapping["" if key is None else str(key)] = value
            if i >= len(s):
                raise _Incomplete
            if s[i] == ",":
                i = _skip_flow_space(s, i + 1)
            elif s[i] != "}":
                raise ValueError(f"expected ',' or '}}' in flow mapping, found {s[i]!r}")
    if c in _FLOW_STOP:
        raise ValueError(f"unexpected {c!r} in flow collection")
    start = i
    n = len(s)
    while i < n:
        c = s[i]
        if c in _FLOW_STOP or c == "\n":
            break
        if c == ":" and (i + 1 == n or s[i + 1] in " \t\n,]}"):
            break
        if c == "#" and s[i - 1] in " \t":
            break
        i += 1
    return resolve_plain(s[start:i].strip()), i


class _Parser:
    def __init__(self, text: str) -> None:
        if text.startswith("\ufeff"):
            text = text[1:]
        lines = text.replace("\r\n", "\n").split("\n")
        # Keep only the first document: MLflow writes one, with no markers.
        start = 0
        for k, line in enumerate(lines):
            if _is_blank(line):
                continue
            if line.rstrip() == "---":
                start = k + 1
            break
        end = len(lines)
        for k in range(start, len(lines)):
            if lines[k].rstrip() in ("---", "..."):
                end = k
                break
        self.lines = lines[:end]
        self.pos = start
        self.rewrites: list[tuple[int, str]] = []

    def error(self, message: str, pos: int | None = None) -> YamlSubsetError:
        return YamlSubsetError(message, (self.pos if pos is None else pos) + 1)

    def skip_blank(self) -> bool:
        """Move past blank and comment lines; return False at the end of the text."""
        while self.pos < len(self.lines):
            line = self.lines[self.pos]
            if not _is_blank(line):
                if line.lstrip(" ").startswith("\t"):
                    raise self.error("tab used for indentation")
                return True
            self.pos += 1
        return False

    def document(self) -> dict[str, YamlValue]:
        if not self.skip_blank():
            return {}
        line = self.lines[self.pos]
        indent = _indent_of(line)
        content = line[indent:]
        if _is_seq_item(content):
            raise self.error("top level is a sequence, not a mapping")
        if content.startswith("{"):
            value = self.inline_value(content, -1)
            if not isinstance(value, dict):
                raise self.error("top level is not a mapping")
        else:
            value = self.mapping(indent)
        if self.skip_blank():
            raise self.error("unexpected indentation or text after the top-level mapping")
        return value

    def block(self, indent: int) -> YamlValue:
        content = self.lines[self.pos][indent:]
        if _is_seq_item(content):
            return self.sequence(indent, lenient=True)
        if not _is_mapping_line(content):
            # a lone scalar on its own line under a key ("key:\n  value")
            return self.inline_value(content, indent - 1)
        return self.mapping(indent, lenient=True)

    def guarded(
        self, parse: Callable[[], YamlValue], parent_indent: int, *, own_line: bool, seq: bool
    ) -> YamlValue:
        """Run ``parse``; if it fails, skip the node's lines and return them as :class:`Unparsed`.

        Nested sections are never what a reader of meta.yaml needs, so an unreadable one must
        not make the file unreadable. The node's lines are its own first line (``own_line``),
        then those indented deeper than ``parent_indent`` and, for a mapping value (``seq``),
        the "- " items PyYAML writes at the key's own indent.
        """
        start = self.pos
        mark = len(self.rewrites)
        try:
            return parse()
        except (YamlSubsetError, ValueError) as exc:
            while len(self.rewrites) > mark:  # undo sequence items' in-place rewrites
                k, original = self.rewrites.pop()
                self.lines[k] = original
            self.pos = start + 1 if own_line else start
            while self.pos < len(self.lines):
                line = self.lines[self.pos]
                line_indent = _indent_of(line)
                inside = line_indent > parent_indent or (
                    seq and line_indent == parent_indent and _is_seq_item(line[line_indent:])
                )
                if not (_is_blank(line) or inside):
                    break
                self.pos += 1
            raw = "\n".join(self.lines[start : self.pos]).rstrip()
            return Unparsed(raw, str(exc))

    def nested(self, indent: int, parent_indent: int) -> YamlValue:
        """Parse the block at ``indent`` that belongs to a key or item at ``parent_indent``."""
        return self.guarded(
            partial(self.block, indent), parent_indent, own_line=False, seq=indent == parent_indent
        )

    def mapping(self, indent: int, *, lenient: bool = False) -> dict[str, YamlValue]:
        result: dict[str, YamlValue] = {}
        while self.skip_blank():
            line = self.lines[self.pos]
            line_indent = _indent_of(line)
            if line_indent < indent:
                break
            if line_indent > indent:
                raise self.error("unexpected indentation")
            content = line[indent:]
            if _is_seq_item(content):
                raise self.error("sequence item where a mapping key was expected")
            key, rest = self.split_key(content)
            if lenient:
                result[key] = self.guarded(
                    partial(self.value_after_key, rest, indent),
                    indent,
                    own_line=True,
                    seq=True,
                )
            else:
                result[key] = self.value_after_key(rest, indent)
        return result

    def split_key(self, content: str) -> tuple[str, str]:
        if content[0] in "\"'":
            try:
                key, end = _scan_quoted(content, 0)
            except _Incomplete:
                raise self.error("multi-line quoted keys are not supported") from None
            except ValueError as exc:
                raise self.error(str(exc)) from None
            rest = content[end:].lstrip(" \t")
            if not rest.startswith(":") or (len(rest) > 1 and rest[1] not in " \t"):
                raise self.error("expected ':' after quoted key")
            return key, rest[1:]
        if content.startswith("? "):
            raise self.error("complex keys are not supported")
        colon = _key_colon(content)
        if colon <= 0:
            raise self.error("expected 'key: value'")
        return content[:colon].rstrip(), content[colon + 1 :]

    def value_after_key(self, rest: str, indent: int) -> YamlValue:
        """Parse the value whose text starts with ``rest`` on the current line."""
        rest = rest.strip()
        node = self.strip_properties(rest)[1]
        if node and not node.startswith("#"):
            return self.inline_value(rest, indent)
        self.pos += 1
        if not self.skip_blank():
            return None
        line = self.lines[self.pos]
        line_indent = _indent_of(line)
        if line_indent > indent:
            return self.nested(line_indent, indent)
        if line_indent == indent and _is_seq_item(line[indent:]):
            # PyYAML writes a mapping's list values without indenting the "- " items
            return self.nested(indent, indent)
        return None

    def sequence(self, indent: int, *, lenient: bool = False) -> list[YamlValue]:
        items: list[YamlValue] = []
        while self.skip_blank():
            line = self.lines[self.pos]
            line_indent = _indent_of(line)
            if line_indent < indent:
                break
            if line_indent > indent:
                raise self.error("unexpected indentation in sequence")
            content = line[indent:]
            if not _is_seq_item(content):
                break
            rest = content[1:]
            with_props = rest.lstrip(" \t")
            stripped = self.strip_properties(with_props)[1]
            if not stripped or stripped.startswith("#"):
                self.pos += 1
                if self.skip_blank() and _indent_of(self.lines[self.pos]) > indent:
                    items.append(self.nested(_indent_of(self.lines[self.pos]), indent))
                else:
                    items.append(None)
                continue
            item_indent = indent + len(content) - len(stripped)
            if _is_seq_item(stripped) or _is_mapping_line(stripped):
                # Re-read "- a: 1" as if "a: 1" began its own line at its column, so compact
                # nested mappings and sequences go through the ordinary block code.
                self.rewrites.append((self.pos, line))
                self.lines[self.pos] = " " * item_indent + stripped
                items.append(self.nested(item_indent, indent))
            elif lenient:
                items.append(
                    self.guarded(
                        partial(self.inline_value, with_props, indent),
                        indent,
                        own_line=True,
                        seq=False,
                    )
                )
            else:
                items.append(self.inline_value(with_props, indent))
        return items

    def strip_properties(self, text: str) -> tuple[str | None, str]:
        """Drop anchors (``&a``) and tags (``!!str``) in front of a node; return (tag, rest)."""
        tag = None
        while text.startswith(("&", "!")):
            token, _, text = text.partition(" ")
            if token.startswith("!"):
                tag = token
            text = text.lstrip(" \t")
        return tag, text

    def inline_value(self, text: str, parent_indent: int) -> YamlValue:
        """Parse a node that starts on the current line, consuming its continuation lines."""
        tag, text = self.strip_properties(text)
        if text.startswith("*"):
            raise self.error("aliases are not supported")
        if text[0] in "|>":
            return self.block_scalar(text, parent_indent)
        if text[0] in "\"'[{":
            return self.flow_node(text, parent_indent)
        first = _strip_comment(text)
        parts = [first]
        end = self.pos
        if first == text.rstrip():  # a comment ends a plain scalar; otherwise it may continue
            pending = 0
            k = self.pos + 1
            while k < len(self.lines):
                line = self.lines[k]
                stripped = line.strip()
                if not stripped:
                    pending += 1
                elif _indent_of(line) > parent_indent and stripped[0] != "#":
                    if _key_colon(stripped) != -1:
                        raise self.error("a plain scalar cannot continue with 'key: value'", k)
                    piece = _strip_comment(stripped)
                    parts.append("\n" * pending if pending else " ")
                    parts.append(piece)
                    pending = 0
                    end = k
                    if piece != stripped:
                        break
                else:
                    break
                k += 1
        self.pos = end + 1
        raw = "".join(parts)
        if tag == "!!str":
            return raw
        return resolve_plain(raw)

    def flow_node(self, text: str, parent_indent: int) -> YamlValue:
        """Parse a quoted scalar or flow collection, which may span several lines."""
        start = self.pos
        buf = text
        k = self.pos
        while True:
            try:
                value, end = _scan_flow(buf, 0)
                break
            except _Incomplete:
                k += 1
                if k >= len(self.lines):
                    raise self.error(
                        "unterminated quoted scalar or flow collection", start
                    ) from None
                line = self.lines[k]
                if line.strip() and _indent_of(line) <= parent_indent:
                    raise self.error(
                        "unterminated quoted scalar or flow collection", start
                    ) from None
                buf += "\n" + line
            except ValueError as exc:
                raise self.error(str(exc), start) from None
        tail = buf[end:].strip()
        if tail and not tail.startswith("#"):
            raise self.error(f"unexpected text after value: {tail[:20]!r}", k)
        self.pos = k + 1
        return value

    def block_scalar(self, header: str, parent_indent: int) -> str:
        """Parse a ``|`` (literal) or ``>`` (folded) block scalar with its chomping indicator."""
        style = header[0]
        indicators = _strip_comment(header[1:])
        chomp = "clip"
        explicit = 0
        for ch in indicators:
            if ch == "-":
                chomp = "strip"
            elif ch == "+":
                chomp = "keep"
            elif ch.isdigit() and ch != "0":
                explicit = int(ch)
            else:
                raise self.error(f"bad block scalar header {header!r}")
        self.pos += 1
        base = max(parent_indent, 0) + explicit if explicit else -1
        lines: list[str] = []
        while self.pos < len(self.lines):
            line = self.lines[self.pos]
            if not line.strip():
                lines.append("")
                self.pos += 1
                continue
            line_indent = _indent_of(line)
            if base == -1:
                if line_indent <= parent_indent:
                    break
                base = line_indent
            if line_indent < base:
                break
            lines.append(line[base:])
            self.pos += 1
        trailing = 0
        while lines and lines[-1] == "":
            lines.pop()
            trailing += 1
        if style == "|":
            body = "\n".join(lines)
        else:
            pieces: list[str] = []
            pending = 0
            prev_more = False
            for line in lines:
                if line == "":
                    pending += 1
                    continue
                more = line[0] in " \t"
                if pieces:
                    if more or prev_more:
                        pieces.append("\n" * (pending + 1))
                    else:
                        pieces.append("\n" * pending if pending else " ")
                else:
                    pieces.append("\n" * pending)
                pieces.append(line)
                pending = 0
                prev_more = more
            body = "".join(pieces)
        if not lines:
            return "\n" * trailing if chomp == "keep" else ""
        if chomp == "strip":
            return body
        if chomp == "keep":
            return body + "\n" * (trailing + 1)
        return body + "\n"


def parse_mapping(text: str) -> dict[str, YamlValue]:
    """Parse a YAML document whose top level is a mapping (an empty document gives ``{}``).

    Keys are returned as the strings written (``1: x`` gives key ``"1"``). Raises
    :class:`YamlSubsetError` when a top-level line cannot be read.
    """
    return _Parser(text).document()

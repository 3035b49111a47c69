"""Untrusted text (link values, imported names and configs, messages that quote them) shown as plain text."""

from __future__ import annotations

import re

import streamlit as st

from core.catalog import clipped

# The most of one untrusted value a message quotes: enough to recognise it, never a 900 kB notice.
QUOTE_CHARS = 80
# Any message that carries untrusted pieces is held to this many characters in all.
MESSAGE_CHARS = 600

# Characters with a meaning in inline Markdown (CommonMark, GFM and Streamlit's additions:
# emphasis, code, links, images, HTML and entities, tables, strikethrough, LaTeX, :colour[...]):
# backslash-escaped they are literal. Digits, commas and full stops stay as they are, so
# figures read normally in an exported file too; so does an underscore inside a word (Q4_K_M),
# which cannot open emphasis there.
_INLINE_SPECIALS = re.compile(r"([\\`*\[\]<>!|#~$&{}]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")
# At the start of a line these open a list or a quote ("- x", "+ x", "> x", "1. x", "2) x").
_BLOCK_MARKER = re.compile(r"^([-+>=])")
_ORDERED_MARKER = re.compile(r"^(\d+)([.)])(?=\s|$)")
# Streamlit's Markdown also rewrites text *after* escapes are resolved: GFM autolink literals
# (www., http://, e-mail addresses) and :material/...: icons appeared in a real Chromium even
# from escaped text. A zero-width space after these triggers breaks each pattern while the
# text reads the same.
_ZERO_WIDTH_SPACE = "\u200b"
_TEXT_LEVEL_TRIGGERS = re.compile(r"(www(?=\.)|:(?=[A-Za-z/])|@(?=\w))", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")


def quote(value: object, limit: int = QUOTE_CHARS) -> str:
    """One untrusted value as a message quotes it: on one line, at most `limit` characters."""
    return clipped(_WHITESPACE.sub(" ", "".join(c if c.isprintable() else " " for c in str(value))), limit)


def markdown_literal(text: object, limit: int = MESSAGE_CHARS) -> str:
    """`text` as Markdown that Streamlit (and GitHub) display character for character: one
    line, clipped, Markdown's special characters and line-start markers escaped, autolink and
    icon triggers broken."""
    escaped = _INLINE_SPECIALS.sub(r"\\\1", quote(text, limit))
    escaped = _ORDERED_MARKER.sub(r"\1\\\2", _BLOCK_MARKER.sub(r"\\\1", escaped))
    return _TEXT_LEVEL_TRIGGERS.sub(lambda match: match.group(1) + _ZERO_WIDTH_SPACE, escaped)


def warning(text: object, icon: str | None = ":material/warning:") -> None:
    st.warning(markdown_literal(text), icon=icon)


def error(text: object, icon: str | None = ":material/error:") -> None:
    st.error(markdown_literal(text), icon=icon)


def info(text: object, icon: str | None = ":material/info:") -> None:
    st.info(markdown_literal(text), icon=icon)

"""What a reader sees of Markdown the app escapes: backslash escapes and zero-width spaces removed."""

import re


def plain(markdown: str) -> str:
    """Notice text as a reader sees it: Markdown backslash escapes and the zero-width spaces
    that break autolinks removed (ui.untrusted.markdown_literal adds both)."""
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u200b", "")

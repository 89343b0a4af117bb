"""Text from the data, made safe for the Markdown files (used by files.py and report.py)."""

from __future__ import annotations


def md_escape(text: str) -> str:
    """Escape text from the data for a Markdown table cell.

    Parameters
    ----------
    text : str
        Any text (names come from data and may hold ``|``, ``<``, ``*`` ...).

    Returns
    -------
    str
        The text with Markdown's special characters backslash-escaped, on one line.

    Examples
    --------
    >>> md_escape("Evil|Town <b>")
    'Evil\\\\|Town \\\\<b\\\\>'
    """
    out = str(text)
    for ch in "\\`*_{}[]<>()#+!|":
        out = out.replace(ch, "\\" + ch)
    return out.replace("\n", " ").replace("\r", " ")


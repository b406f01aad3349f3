"""Text helpers."""

import textwrap


def dedent(text):
    """textwrap.dedent() that also drops the newlines before the first
    line and the spaces and newlines after the last one."""
    return textwrap.dedent(text.lstrip("\n").rstrip(" \n"))

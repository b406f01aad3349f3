"""Paths from tests and metadata made safe to use under a directory."""

import re
from pathlib import PurePath

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def normalize_path(src):
    """A relative PurePath that cannot leave the directory it is joined
    to: control characters become "_", and leading "/", "." and ".."
    parts are dropped."""
    text = _CONTROL.sub("_", str(src))
    return PurePath(*(p for p in PurePath(text).parts
                      if p not in (".", "..") and "/" not in p))

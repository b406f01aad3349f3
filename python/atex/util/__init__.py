"""Small helpers the blocks share, in one flat namespace (``util.X``)
as Python ATEX has them: thread helpers, a read-only named mapping, safe
relative paths, per-instance loggers, text and subprocess helpers."""

from .context import StartStop
from .logs import get_loggers
from .mapping import NamedMapping
from .paths import normalize_path
from .proc import subprocess_log, subprocess_stream
from .text import dedent
from .threads import ThreadJoin, ThreadJoinQueue, ThreadResult

__all__ = (
    "NamedMapping",
    "StartStop",
    "ThreadJoin",
    "ThreadJoinQueue",
    "ThreadResult",
    "dedent",
    "get_loggers",
    "normalize_path",
    "subprocess_log",
    "subprocess_stream",
)

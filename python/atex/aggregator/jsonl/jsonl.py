"""The JSON Lines aggregators over libatex's (see the package docstring)."""

import logging
import lzma

from ... import _atex
from .._libatex import LibatexAggregator

_logger = logging.getLogger("atex.aggregator.jsonl")


class JSONLinesAggregator(LibatexAggregator):
    """Results of every ingested test as JSON Lines in ``target``.

    - ``target``: str/Path of the ``.jsonl`` file; ``start()`` raises
      FileExistsError when it exists.
    - ``files``: str/Path of the directory for the files tests uploaded,
      ``FILES/<platform>/<test name>/...``; FileExistsError when it exists.
    - ``allow_duplicate``: a test ingested again for the same platform is
      named ``"<test> (1)"``, ``"<test> (2)"``... instead of raising
      AggregatorError.

    ``ingest()`` is thread-safe and consumes the artifacts (``results`` is
    removed, ``files/`` is taken); the writing is libatex's, with the GIL
    released, one write(2) per test.
    """

    logger = _logger
    _compression = _atex.AGGREGATOR_COMPRESSION_NONE
    _level = 0

    def _new_handle(self):
        return _atex.AggregatorJSONLines(
            self.target, self.files, compression=self._compression,
            strict=True, exclusive=True, level=self._level,
        )


class _CompressedJSONLinesAggregator(JSONLinesAggregator):
    """A compressed ``target``, and optionally compressed uploaded files
    (libatex's compress_files, with the GIL released): every regular file
    (not a symlink, basename not in ``exclude``) is written compressed as
    ``name + suffix`` (under its own name for suffix ``""``), and the
    results' ``files`` lists get the suffix (names whose basename is
    excluded keep theirs), as if the test had uploaded compressed files."""

    def __init__(self, *args, compress_files, suffix, exclude, **kwargs):
        super().__init__(*args, **kwargs)
        self.compress_files = compress_files
        self.suffix = suffix
        self.exclude = tuple(exclude or ())

    def _new_handle(self):
        return _atex.AggregatorJSONLines(
            self.target, self.files, compression=self._compression,
            strict=True, exclusive=True, level=self._level,
            compress_files=self._compression if self.compress_files else 0,
            files_suffix=self.suffix, files_exclude=self.exclude,
        )


class GzipJSONLinesAggregator(_CompressedJSONLinesAggregator):
    """JSONLinesAggregator writing a gzip ``target`` (libatex's stream,
    flushed to a readable point after every test).

    - ``compress_level``: 1 (fast) to 9 (small).
    - ``compress_files``: gzip the files tests uploaded too.
    - ``compress_files_suffix``: appended to the compressed files' names
      and to their names in the results (``""``: compressed in place).
    - ``compress_files_exclude``: basenames left as they are.
    """

    _compression = _atex.AGGREGATOR_COMPRESSION_GZIP

    def __init__(self, *args, compress_level=9, compress_files=True,
                 compress_files_suffix=".gz", compress_files_exclude=None,
                 **kwargs):
        super().__init__(*args, compress_files=compress_files,
                         suffix=compress_files_suffix,
                         exclude=compress_files_exclude, **kwargs)
        if not 1 <= compress_level <= 9:
            raise ValueError(f"compress_level {compress_level}: 1 to 9")
        self.level = self._level = compress_level


class LZMAJSONLinesAggregator(_CompressedJSONLinesAggregator):
    """JSONLinesAggregator writing an xz ``target``.

    - ``compress_preset``: 0 (fast) to 9 (small), optionally ORed with
      ``lzma.PRESET_EXTREME``.
    - ``compress_files``, ``compress_files_suffix`` (default ``".xz"``),
      ``compress_files_exclude``: as for GzipJSONLinesAggregator.
    """

    _compression = _atex.AGGREGATOR_COMPRESSION_XZ

    def __init__(self, *args, compress_preset=9, compress_files=True,
                 compress_files_suffix=".xz", compress_files_exclude=None,
                 **kwargs):
        super().__init__(*args, compress_files=compress_files,
                         suffix=compress_files_suffix,
                         exclude=compress_files_exclude, **kwargs)
        if not 0 <= (compress_preset & ~lzma.PRESET_EXTREME) <= 9:
            raise ValueError(f"compress_preset {compress_preset}: 0 to 9")
        self.preset = compress_preset
        # libatex reads level 0 as its default, preset 1 (see PYTHON.md).
        self._level = compress_preset

"""The JSON Lines aggregators over libatex's (see the package docstring)."""

import gzip
import json
import logging
import lzma
import os
import shutil
from pathlib import Path

from ... import _atex
from .. import Aggregator
from .._common import SeenTests, check_artifacts, has_entries

_logger = logging.getLogger("atex.aggregator.jsonl")


class JSONLinesAggregator(Aggregator):
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

    _compression = _atex.AGGREGATOR_COMPRESSION_NONE
    _level = 0

    def __init__(self, target, files, *, allow_duplicate=False):
        self.logger = _logger
        self.target = Path(target)
        self.files = Path(files)
        self.allow_duplicate = allow_duplicate
        self._seen = SeenTests(allow_duplicate)
        self._handle = None

    def _new_handle(self):
        return _atex.AggregatorJSONLines(
            self.target, self.files, compression=self._compression,
            strict=True, exclusive=True, level=self._level,
        )

    def start(self):
        """Create ``target`` and the ``files`` directory (FileExistsError
        when either exists)."""
        self.logger.debug(f"starting: {self}")
        if self._handle is None:
            self._handle = self._new_handle()
        self._handle.start()

    def stop(self):
        """Flush and close ``target`` (a compressed stream is ended)."""
        self.logger.debug(f"stopping: {self}")
        handle, self._handle = self._handle, None
        if handle is not None:
            try:
                handle.stop()
            finally:
                handle.close()

    def _prepare_files(self, artifacts):
        """Hook of the compressed variants: process ``artifacts`` before
        libatex reads it."""

    def ingest(self, platform, test_name, artifacts):
        """Aggregate one test's ``artifacts`` (see the class)."""
        test_name = self._seen.name(platform, test_name)
        self.logger.info(f"ingesting '{platform}' / '{test_name}' from '{artifacts}'")
        handle = self._handle
        if handle is None:
            raise RuntimeError(f"{self}: ingest before start()")
        artifacts, _ = check_artifacts(artifacts, self.files, platform, test_name)
        files = artifacts / "files"
        self._prepare_files(artifacts)
        any_files = has_entries(files)
        handle.ingest(str(platform), str(test_name), artifacts)
        # Python ATEX moves the artifacts: libatex linked (or copied) them.
        (artifacts / "results").unlink()
        if any_files:
            shutil.rmtree(files, ignore_errors=True)

    def __str__(self):
        return f"{self.__class__.__name__}({self.target}, {self.files})"


class _CompressedJSONLinesAggregator(JSONLinesAggregator):
    """A compressed ``target``, and optionally compressed uploaded files:
    every regular file (not a symlink, basename not in ``exclude``) becomes
    ``name + suffix`` (in place for suffix ``""``), and the results'
    ``files`` lists get the suffix (for names whose basename is not
    excluded), as if the test had uploaded compressed files."""

    def __init__(self, *args, compress_files, suffix, exclude, **kwargs):
        super().__init__(*args, **kwargs)
        self.compress_files = compress_files
        self.suffix = suffix
        self.exclude = tuple(exclude or ())

    def _compress_one(self, src, dst):
        raise NotImplementedError

    def _rewrite_results(self, results):
        lines = []
        with open(results) as f:
            for raw in f:
                if not raw.strip():
                    continue
                result = json.loads(raw)
                names = result.get("files") if isinstance(result, dict) else None
                if isinstance(names, list):
                    result["files"] = [
                        n if not isinstance(n, str) or Path(n).name in self.exclude
                        else f"{n}{self.suffix}"
                        for n in names
                    ]
                lines.append(json.dumps(result) + "\n")
        tmp = results.with_name("results.atex-tmp")
        tmp.write_text("".join(lines))
        os.replace(tmp, results)

    def _prepare_files(self, artifacts):
        if not self.compress_files:
            return
        if self.suffix:
            self._rewrite_results(artifacts / "results")
        for root, _, names in os.walk(artifacts / "files"):
            for name in names:
                src = Path(root) / name
                if name in self.exclude or src.is_symlink() or not src.is_file():
                    continue
                dst = src.with_name(f"{name}{self.suffix}" if self.suffix
                                    else f".{name}.atex-tmp")
                self._compress_one(src, dst)
                if self.suffix:
                    src.unlink()
                else:
                    os.replace(dst, src)


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

    def _compress_one(self, src, dst):
        with open(src, "rb") as plain, \
                gzip.open(dst, "wb", compresslevel=self.level) as out:
            shutil.copyfileobj(plain, out, 1 << 20)


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
        # libatex takes 0 as "its default": preset 0 is spelled with the
        # extreme bit off, which libatex reads as 0 -> its own preset 1;
        # close enough for the fastest setting.
        self._level = compress_preset

    def _compress_one(self, src, dst):
        with open(src, "rb") as plain, \
                lzma.open(dst, "wb", preset=self.preset) as out:
            shutil.copyfileobj(plain, out, 1 << 20)

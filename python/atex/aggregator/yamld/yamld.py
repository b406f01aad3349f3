"""YAMLDocumentAggregator: one YAML document per ingested test."""

import logging

from ... import _atex
from .._libatex import LibatexAggregator

_logger = logging.getLogger("atex.aggregator.yamld")


class YAMLDocumentAggregator(LibatexAggregator):
    """A ``---`` YAML document per ingested test in ``target``, files
    under ``files/<platform>/<test name>``; ``target``, ``files`` and
    ``allow_duplicate`` as for JSONLinesAggregator.

    A document has the keys ``platform``, ``name``, ``status``, ``files``,
    ``note`` and ``subtests`` (items ``{name, status, files, note}``), in
    that order, those without a value left out; the results without a
    name are the test's own, merged (the last status and note, the files
    of all). Written by libatex (its compact YAML layout), the GIL
    released; ingest() is thread-safe and consumes the artifacts."""

    logger = _logger

    def _new_handle(self):
        return _atex.AggregatorYAML(self.target, self.files, compact=True,
                                    strict=True, exclusive=True)

"""YAMLDocumentAggregator: one YAML document per ingested test."""

import json
import logging
import threading
from pathlib import Path

import yaml

from .. import Aggregator
from .._common import SeenTests, check_artifacts, has_entries, lexists, move_verbatim

_logger = logging.getLogger("atex.aggregator.yamld")


def _document(platform, test_name, results):
    """The document of one test: keys in the order platform, name,
    status, files, note, subtests; empty ones left out. Results without
    a name are the test's own (merged: status and note overwritten, files
    added up), named ones its subtests."""
    doc = {"platform": platform, "name": test_name, "status": None,
           "files": [], "note": None, "subtests": []}
    with open(results) as f:
        for raw in f:
            if not raw.strip():
                continue
            result = json.loads(raw)
            status, note = result.get("status"), result.get("note")
            files = result.get("files")
            if name := result.get("name"):
                sub = {"name": name}
                if status is not None:
                    sub["status"] = status
                if files:
                    sub["files"] = files
                if note is not None:
                    sub["note"] = note
                doc["subtests"].append(sub)
                continue
            if status is not None:
                doc["status"] = status
            if files:
                doc["files"] += files
            if note is not None:
                doc["note"] = note
    return {k: v for k, v in doc.items() if v is not None and v != []}


class YAMLDocumentAggregator(Aggregator):
    """A ``---`` YAML document per ingested test in ``target``, files
    under ``files/<platform>/<test name>``; ``target``, ``files`` and
    ``allow_duplicate`` as for JSONLinesAggregator. Written in Python
    (PyYAML); ingest() is thread-safe and consumes the artifacts."""

    def __init__(self, target, files, *, allow_duplicate=False):
        self.logger = _logger
        self.target = Path(target)
        self.files = Path(files)
        self.allow_duplicate = allow_duplicate
        self._seen = SeenTests(allow_duplicate)
        self._lock = threading.Lock()
        self._fobj = None

    def start(self):
        """Create ``target`` and ``files`` (FileExistsError when either
        exists)."""
        self.logger.debug(f"starting: {self}")
        if lexists(self.target):
            raise FileExistsError(f"{self.target} already exists")
        if lexists(self.files):
            raise FileExistsError(f"{self.files} already exists")
        self._fobj = open(self.target, "x")
        self.files.mkdir()

    def stop(self):
        """Close ``target``."""
        self.logger.debug(f"stopping: {self}")
        with self._lock:
            fobj, self._fobj = self._fobj, None
        if fobj is not None:
            fobj.close()

    def ingest(self, platform, test_name, artifacts):
        """Aggregate one test's ``artifacts`` (consumed)."""
        test_name = self._seen.name(platform, test_name)
        self.logger.info(f"ingesting '{platform}' / '{test_name}' from '{artifacts}'")
        artifacts, test_files = check_artifacts(artifacts, self.files, platform, test_name)
        doc = _document(platform, test_name, artifacts / "results")
        text = yaml.safe_dump(doc, explicit_start=True, default_flow_style=False,
                              sort_keys=False, indent=2, allow_unicode=True)
        with self._lock:
            if self._fobj is None:
                raise RuntimeError(f"{self}: ingest before start()")
            self._fobj.write(text)
            self._fobj.flush()
        (artifacts / "results").unlink()
        files = artifacts / "files"
        if has_entries(files):
            test_files.parent.mkdir(parents=True, exist_ok=True)
            move_verbatim(files, test_files)

    def __str__(self):
        return f"{self.__class__.__name__}({self.target}, {self.files})"

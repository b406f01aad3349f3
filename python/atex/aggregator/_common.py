"""What the aggregators share (internal)."""

import os
import threading
from pathlib import Path


def lexists(path):
    """Whether ``path`` exists, a dangling symlink included."""
    return os.path.lexists(path)


def has_entries(path):
    """Whether the directory ``path`` exists and is not empty."""
    try:
        with os.scandir(path) as it:
            return any(True for _ in it)
    except (FileNotFoundError, NotADirectoryError):
        return False


class SeenTests:
    """The (platform, test) pairs ingested so far: a second one is an
    AggregatorError, or with ``allow_duplicate`` is renamed
    ``"<test> (1)"``, ``"<test> (2)"``..."""

    def __init__(self, allow_duplicate):
        self.allow_duplicate = allow_duplicate
        self._seen = {}
        self._lock = threading.Lock()

    def name(self, platform, test_name):
        from . import AggregatorError

        key = (platform, test_name)
        with self._lock:
            count = self._seen.get(key)
            if count is None:
                self._seen[key] = 1
                return test_name
            if not self.allow_duplicate:
                raise AggregatorError(
                    f"'{test_name}' was already ingested once for '{platform}'",
                )
            self._seen[key] = count + 1
            return f"{test_name} ({count})"


def check_artifacts(artifacts, files, platform, test_name):
    """PA's checks before an ingest: ``artifacts/results`` must exist
    (FileNotFoundError) and the test's files directory must not
    (FileExistsError). Returns (artifacts Path, the test's files dir as
    a str)."""
    artifacts = Path(artifacts)
    results = artifacts / "results"
    if not lexists(results):
        raise FileNotFoundError(f"{results} does not exist")
    # libatex's layout (names kept as they are, empty components
    # dropped). Strings, not PurePath: pathlib interns every component,
    # and a long run's test names would stay in the interning table.
    test_files = os.path.join(files, str(platform),
                              "/".join(p for p in str(test_name).split("/") if p))
    if lexists(test_files):
        raise FileExistsError(f"{test_files} already exists for {test_name}")
    return artifacts, test_files

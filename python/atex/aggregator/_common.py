"""What the aggregators share (internal)."""

import os
import shutil
import threading
from pathlib import Path, PurePath

_CONTROL = {c: "_" for c in range(32)} | {127: "_"}


def normalize_path(name):
    """``name`` (any str()-able) as a relative PurePath safe under a
    directory: control characters become ``_``, empty, ``.`` and ``..``
    components and a leading ``/`` are dropped."""
    text = str(name).translate(_CONTROL)
    parts = [p for p in text.split("/") if p not in ("", ".", "..")]
    return PurePath(*parts) if parts else PurePath()


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


def move_verbatim(src, dst):
    """Move ``src`` to ``dst`` (a rename, or a copy keeping symlinks as
    symlinks across file systems)."""
    return shutil.move(
        src, dst,
        copy_function=lambda s, d: shutil.copy2(s, d, follow_symlinks=False),
    )


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
    (FileExistsError). Returns (artifacts Path, the test's files dir)."""
    artifacts = Path(artifacts)
    results = artifacts / "results"
    if not lexists(results):
        raise FileNotFoundError(f"{results} does not exist")
    test_files = files / normalize_path(platform) / normalize_path(test_name)
    if lexists(test_files):
        raise FileExistsError(f"{test_files} already exists for {test_name}")
    return artifacts, test_files

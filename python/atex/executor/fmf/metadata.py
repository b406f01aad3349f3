"""fmf metadata helpers and FMFTests (atex.executor.fmf.metadata)."""

import dataclasses
import os
import re
from pathlib import Path


@dataclasses.dataclass
class FMFTests:
    """The tests `discover()` selected, ready for FMFExecutor.

    - `plan`: the plan's data (adjusted), {} without a plan;
    - `data`: test name -> its metadata (adjusted), in run order; a
      script may change values and remove tests before running them
      (adding or renaming tests is refused when the tests are run);
    - `sources`: test name -> the directory the test runs in, relative
      to `root`;
    - `root`: the fmf tree root (a Path).

    Use `.data.keys()` as the list of tests.
    """

    plan: dict
    data: dict
    sources: dict
    root: Path
    _discovery: object = dataclasses.field(default=None, repr=False, compare=False)
    _names: list = dataclasses.field(default_factory=list, repr=False, compare=False)
    _by_name: dict = dataclasses.field(default=None, repr=False, compare=False)

    def __str__(self):
        return f"{type(self).__name__}(<holding {len(self.data)} tests>, root={self.root})"

    def _sync(self, only=None):
        """Push edits of .data into libatex's discovery (removed tests,
        changed data: every test's, or only the test named `only`) and
        return it (an _atex.FMFDiscovery).

        Only a test whose data differs from libatex's copy is pushed, and
        a push replaces libatex's object instead of changing it, so
        executors already running on other threads are never disturbed.
        """
        d = self._discovery
        if d is None:
            raise ValueError(
                f"{self}: made without discover(), so libatex has no tests to run"
            )
        if only is not None:
            i = self._index().get(only)
            if i is None:
                raise ValueError(
                    f"test {only!r} was added to FMFTests.data: only tests "
                    "discover() found can run (rename or add them in the fmf tree)"
                )
            self._push(d, i, only)
            return d
        if len(self.data) != len(self._names) or self.data.keys() != self._index().keys():
            known = self._index()
            for name in self.data:
                if name not in known:
                    raise ValueError(
                        f"test {name!r} was added to FMFTests.data: only tests "
                        "discover() found can run (rename or add them in the fmf tree)"
                    )
            for i in reversed(range(len(self._names))):
                if self._names[i] not in self.data:
                    d.remove(i)
                    del self._names[i]
            self._by_name = None
        for i, name in enumerate(self._names):
            self._push(d, i, name)
        return d

    def _index(self):
        if self._by_name is None:
            self._by_name = {name: i for i, name in enumerate(self._names)}
        return self._by_name

    def _push(self, d, i, name):
        data = self.data[name]
        if not isinstance(data, dict):
            raise TypeError(f"FMFTests.data[{name!r}] is not a dict")
        if not d.same(i, data):
            d.set_data(i, data)


def listlike(data, key):
    """`data[key]` as a sequence: a list as it is, any other value as a
    1-tuple, a missing or null key as ()."""
    value = data.get(key)
    if value is None:
        return ()
    return value if isinstance(value, list) else (value,)


_DURATION = re.compile(r"([0-9]+)([smhd]?)")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_to_seconds(string):
    """An fmf `duration` ("5m", "1h", "30", 30) in seconds; ValueError
    for anything else (libatex itself also reads tmt's "1h 30m" and "*2")."""
    match = _DURATION.fullmatch(str(string))
    if not match:
        raise ValueError(f"invalid fmf duration format: {string}")
    return int(match.group(1)) * _UNIT[match.group(2)]


def test_pkg_requires(data, key="require"):
    """The package names in a test's `key` (require or recommend),
    without library and file entries (mappings)."""
    for entry in listlike(data, key):
        if isinstance(entry, str):
            yield entry


def all_pkg_requires(fmf_tests, key="require"):
    """Every package the plan's `prepare` installs and the tests' `key`
    names, each once."""
    pkgs = set()
    for step in listlike(fmf_tests.plan, "prepare"):
        if isinstance(step, dict) and step.get("how") == "install":
            pkgs.update(listlike(step, "package"))
    for data in fmf_tests.data.values():
        pkgs.update(test_pkg_requires(data, key))
    yield from pkgs


def _source(root, test_root, test_dir):
    """A test's directory relative to the discovery root (absolute when
    it lives elsewhere, a cloned `url` phase)."""
    if test_root == root:
        return test_dir
    rel = os.path.relpath(os.path.join(test_root, test_dir), root)
    if rel.startswith(".."):
        return os.path.join(test_root, test_dir)
    return rel

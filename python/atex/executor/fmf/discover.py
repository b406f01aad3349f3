"""fmf test discovery (atex.executor.fmf.discover), over libatex's."""

import logging
import os
from pathlib import Path

from ... import _atex
from .metadata import FMFTests, _source

_log = logging.getLogger("atex.fmf")

try:  # the fmf library's class, so that scripts catching it keep working
    from fmf.utils import FetchError as _FetchBase
except ImportError:
    _FetchBase = OSError


class FetchError(_FetchBase):
    """A remote tree a plan names (``url``) could not be fetched (git
    failed); a subclass of ``fmf.utils.FetchError`` where fmf imports."""


def _tree_path(fmf_tree):
    if isinstance(fmf_tree, (str, bytes, os.PathLike)):
        return fmf_tree
    if isinstance(fmf_tree, dict):
        if "url" in fmf_tree:
            raise ValueError(
                f"fmf_tree {fmf_tree!r}: a remote fmf id is not fetched here; "
                "clone it and give its path (a plan's discover `url` is cloned)"
            )
        if "path" not in fmf_tree:
            raise ValueError(f"fmf_tree {fmf_tree!r}: an fmf id needs 'path'")
        return fmf_tree["path"]
    root = getattr(fmf_tree, "root", None)
    if root is None:
        raise TypeError(
            "fmf_tree: expected a path, an fmf id dict or a tree object "
            f"with .root, not {type(fmf_tree).__name__}"
        )
    return root


def _holds(condition, data, name):
    try:
        return bool(eval(condition, {}, dict(data)))  # noqa: S307 (PA's API)
    except (KeyError, NameError):
        # A key the test's data lacks: not true (fmf's FilterError).
        return False
    except Exception as e:
        raise ValueError(f"condition {condition!r} on test {name}: {e!r}") from e


def discover(
    fmf_tree,
    plan=None,
    *,
    names=None,
    filters=None,
    conditions=None,
    excludes=None,
    context=None,
    libraries=True,
):
    """Discover the tests of `fmf_tree` for the tmt `plan` and return an
    FMFTests.

    - `fmf_tree`: a path to the tree (or a directory in it), an fmf id
      dict with a local 'path', or a tree object with `.root`.
    - `plan`: the plan's name ("/plans/smoke"); None takes every test of
      the tree.
    - `names` (test name regexes, re.search), `filters` (fmf filter
      expressions), `excludes` (name regexes): merged with the plan's fmf
      discover phases' `test`, `filter` and `exclude` (a test is taken
      when any name matches, kept when every filter holds and no exclude
      matches).
    - `conditions`: Python expressions evaluated with the test's data as
      locals; a test is kept when all are true (KeyError counts as false).
    - `context`: a dict of fmf context dimensions ({"distro":
      "fedora-41"}) for adjust rules.
    - `libraries`: accepted for compatibility: fmf libraries (`require:
      library(...)`, `type: library`) are fetched by the executor when it
      stages the tests, for every FMFExecutor, and found by rlImport;
      the tests' `require` stays as written here (docs/PYTHON.md).

    Raises ValueError for a missing plan or bad metadata (the message
    names the file and test), FileNotFoundError when no fmf tree is
    there, FetchError when a remote tree the plan names cannot be
    fetched.
    """
    path = _tree_path(fmf_tree)
    try:
        handle = _atex.fmf_discover(
            path,
            plan,
            names=names or None,
            filters=filters or None,
            excludes=excludes or None,
            context=context or None,
            compat=True,
        )
    except FileNotFoundError as e:
        if plan and "plan" in str(e):
            raise ValueError(str(e)) from None
        raise
    except _atex.Error as e:
        if e.atex_code in (_atex.E_FORMAT, _atex.E_RULE, _atex.E_MERGE):
            raise ValueError(str(e)) from None
        if e.atex_code == _atex.E_EXTERNAL:
            raise FetchError(str(e)) from None
        raise
    root = handle.root
    data, sources, order = {}, {}, []
    for name, test_data, test_dir, test_root in handle.tests():
        order.append(name)
        data[name] = test_data
        sources[name] = _source(root, test_root, test_dir)
    fmf_tests = FMFTests(
        plan=handle.plan(),
        data=data,
        sources=sources,
        root=Path(root),
        _discovery=handle,
        _names=order,
    )
    for name, test_data in list(data.items()):
        if conditions and not all(_holds(c, test_data, name) for c in conditions):
            del data[name]
            del sources[name]
    if conditions:
        fmf_tests._sync()
    return fmf_tests


def resolve_libraries(tests_data, tests_tree, libs_dir, context):
    """Not available: the executor fetches fmf libraries when it stages
    the tests (docs/PYTHON.md), so there is nothing to resolve here."""
    raise NotImplementedError(
        "resolve_libraries: fmf libraries are fetched by the executor when "
        "it stages the tests, not at discovery"
    )

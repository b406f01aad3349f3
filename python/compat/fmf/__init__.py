"""A stand-in for the `fmf` Python library, installed with atex only where
the real one (python3-fmf, not packaged in Debian 12) cannot be imported.

It has what scripts written for Python ATEX hand to atex: ``fmf.Tree(path)``
(a tree root; atex reads the tree with its own C fmf implementation),
``fmf.Context(**dimensions)`` and the ``fmf.utils`` exceptions. Anything
else of fmf's API raises AttributeError: install python3-fmf for it.
"""

import os

from . import utils

__all__ = ("Context", "Tree", "utils")

STAND_IN = True


class Tree:
    """An fmf tree, found from ``path`` upwards as fmf finds it (the
    directory holding ``.fmf/version``). atex's ``discover()`` accepts it
    wherever it accepts a path."""

    def __init__(self, data, *args, **kwargs):
        if not isinstance(data, (str, os.PathLike)):
            raise utils.GeneralError(
                "the fmf stand-in only takes a path: install python3-fmf")
        path = os.path.abspath(os.fspath(data))
        probe = path
        while not os.path.isfile(os.path.join(probe, ".fmf", "version")):
            parent = os.path.dirname(probe)
            if parent == probe:
                raise utils.RootError(
                    f"Unable to find tree root for '{path}'.")
            probe = parent
        self.root = probe
        self.name = "/"

    def __fspath__(self):
        return self.root

    def __repr__(self):
        return f"fmf.Tree({self.root!r})"


class Context:
    """An fmf context: ``Context(distro="fedora-40", arch=["x86_64"])``.
    Values are kept as lists of strings, as fmf keeps them."""

    def __init__(self, *args, **dimensions):
        if args:
            raise utils.GeneralError(
                "the fmf stand-in takes dimensions as keywords only")
        self._dimensions = {}
        for name, value in dimensions.items():
            if isinstance(value, (list, tuple, set)):
                self._dimensions[name] = [str(v) for v in value]
            else:
                self._dimensions[name] = [str(value)]

    @property
    def dimensions(self):
        return {k: list(v) for k, v in self._dimensions.items()}

    def __repr__(self):
        return f"fmf.Context(**{self._dimensions!r})"

"""NamedMapping: a read-only mapping whose keys are also attributes."""

import abc
import collections.abc


class _Meta(abc.ABCMeta):
    """Collects ``required`` and ``default`` from the class statement
    (``class X(NamedMapping, required=("a",), default={"b": 1})``),
    adding to what the bases declare."""

    def __new__(mcs, name, bases, namespace, *, required=(), default=None,
                **kwargs):
        cls = super().__new__(mcs, name, bases, namespace, **kwargs)
        req, dflt = [], {}
        for base in reversed(cls.__mro__[1:]):
            for key in getattr(base, "_required", ()):
                if key not in req:
                    req.append(key)
            dflt.update(getattr(base, "_default", {}))
        for key in required or ():
            if key not in req:
                req.append(key)
        dflt.update(default or {})
        cls._required = tuple(req)
        cls._default = dflt
        return cls


class NamedMapping(collections.abc.Mapping, metaclass=_Meta):
    """A frozen mapping: ``m["a"]`` and ``m.a`` read, nothing writes.

    Subclasses name keys that must be given (``required=``) and values for
    keys left out (``default=``); both add up through inheritance.
    ``Cls._from(other, **extra)`` builds one from the required keys of any
    mapping; ``{**m}`` unpacks every key.
    """

    __slots__ = ("_data",)

    def __init__(self, **keys):
        data = dict(self._default)
        data.update(keys)
        missing = [k for k in self._required if k not in data]
        if missing:
            raise KeyError(
                f"{type(self).__name__}: missing required key(s): "
                + ", ".join(missing))
        object.__setattr__(self, "_data", data)

    @classmethod
    def _from(cls, foreign, **keys):
        picked = {k: foreign[k] for k in cls._required if k in foreign}
        picked.update(keys)
        return cls(**picked)

    def __getattr__(self, name):
        try:
            return object.__getattribute__(self, "_data")[name]
        except KeyError:
            raise AttributeError(
                f"{type(self).__name__!r} has no key {name!r}") from None

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __delattr__(self, name):
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __getitem__(self, key):
        return self._data[key]

    def __setitem__(self, key, value):
        raise KeyError(f"{type(self).__name__} is read-only")

    def __delitem__(self, key):
        raise KeyError(f"{type(self).__name__} is read-only")

    def __contains__(self, key):
        return key in self._data

    def __iter__(self):
        return iter(self._data)

    def __len__(self):
        return len(self._data)

    def __repr__(self):
        inner = ", ".join(f"{k}={v!r}" for k, v in self._data.items())
        return f"{type(self).__name__}({inner})"

"""Ready-made policies for AdHocOrchestrator, used as bases before it:

    class Runner(LimitedRerunsMixin(2), FMFDestructiveMixin(tests),
                 AdHocOrchestrator):
        ...

Each factory returns a new mixin class whose hook falls back to the next
class in the MRO (``super()``) when it has no opinion.
"""

import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration_seconds(value):
    """tmt's duration ("1h 30m", "90", "2.5m", "1h*2") in seconds; 0 when
    it cannot be read."""
    try:
        from ...executor.fmf.metadata import duration_to_seconds
    except ImportError:
        duration_to_seconds = None
    if duration_to_seconds is not None:
        try:
            return duration_to_seconds(value)
        except Exception:  # noqa: BLE001 - a bad duration sorts last
            return 0
    total = 0.0
    text = str(value).strip()
    factor = 1.0
    if "*" in text:
        text, _, mult = text.partition("*")
        try:
            factor = float(mult)
        except ValueError:
            return 0
    for part in text.split():
        m = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd]?)", part)
        if not m:
            return 0
        total += float(m.group(1)) * _UNITS[m.group(2) or "s"]
    return total * factor


def _listlike(data, key):
    value = data.get(key)
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def LimitedRerunsMixin(reruns, cond=lambda code: code != 0):  # noqa: N802
    """A mixin re-running each failed test at most ``reruns`` times: when it
    raised, or when ``cond(exit_code)`` is true (default: non-zero)."""

    class LimitedRerunsMixin:
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._reruns_done = {}

        def should_be_rerun(self, info, /):
            done = self._reruns_done.get(info.test_name, 0)
            if done >= reruns:
                return False
            if info.exception is None and not cond(info.exit_code):
                return False
            self._reruns_done[info.test_name] = done + 1
            return True

    return LimitedRerunsMixin


def FMFDurationMixin(fmf_tests):  # noqa: N802
    """A mixin picking the test with the longest fmf ``duration`` first;
    tests without one are left to the next class's next_test()."""

    class FMFDurationMixin:
        def next_test(self, to_run, previous, /):
            timed = [n for n in to_run if "duration" in fmf_tests.data[n]]
            if timed:
                return max(timed, key=lambda n: _duration_seconds(
                    fmf_tests.data[n]["duration"]))
            return super().next_test(to_run, previous)

    return FMFDurationMixin


def FMFPriorityMixin(fmf_tests):  # noqa: N802
    """A mixin picking the test with the highest ``extra-priority`` first
    (negative ones after every test without one); with only priority 0
    left, the next class's next_test() decides."""

    class FMFPriorityMixin:
        def next_test(self, to_run, previous, /):
            def priority(name):
                return fmf_tests.data[name].get("extra-priority", 0)

            best = max(to_run, key=priority)
            if priority(best) != 0:
                return best
            return super().next_test(to_run, previous)

    return FMFPriorityMixin


def FMFDestructiveMixin(fmf_tests):  # noqa: N802
    """A mixin replacing the system after every test tagged
    ``destructive`` (even a passing one); other tests are left to the
    next class's destructive()."""

    class FMFDestructiveMixin:
        def destructive(self, info, /):
            if "destructive" in _listlike(fmf_tests.data[info.test_name],
                                          "tag"):
                return True
            return super().destructive(info)

    return FMFDestructiveMixin

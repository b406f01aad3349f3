"""The extension's core: error mapping, interruptible calls, logging."""

import logging
import os
import signal
import threading
import time

import pytest

import atex
from atex import _atex


@pytest.mark.parametrize(
    "code, cls",
    [
        (_atex.E_NOMEM, MemoryError),
        (_atex.E_INVAL, ValueError),
        (_atex.E_NOTFOUND, FileNotFoundError),
        (_atex.E_EXISTS, FileExistsError),
        (_atex.E_TIMEDOUT, TimeoutError),
        (_atex.E_IO, OSError),
        (_atex.E_INFRA, _atex.Error),
        (_atex.E_FORMAT, _atex.Error),
    ],
)
def test_error_mapping(code, cls):
    with pytest.raises(cls, match="^boom at x.fmf:3$") as info:
        _atex._selftest_raise(code, "boom at x.fmf:3")
    assert info.value.atex_code == code


def test_error_is_runtime_error():
    assert issubclass(_atex.Error, RuntimeError)
    assert _atex.error_name(_atex.E_INVAL) == "invalid argument"


def test_lazy_subpackages():
    assert "connection" in dir(atex)
    assert atex.util.__name__ == "atex.util"
    with pytest.raises(AttributeError):
        atex.nonexistent


def test_wait_completes():
    start = time.monotonic()
    assert _atex._selftest_wait(200) is False
    assert time.monotonic() - start >= 0.19


def test_ctrl_c_interrupts_blocking_call():
    # SIGINT from another thread 300 ms in: the 30 s C wait must end with
    # KeyboardInterrupt within a second, its cancel having fired.
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    start = time.monotonic()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        _atex._selftest_wait(30000)
    elapsed = time.monotonic() - start
    timer.join()
    assert elapsed < 1.3, elapsed


def test_alarm_handler_exception_interrupts():
    class Alarm(Exception):
        pass

    def handler(signum, frame):
        raise Alarm()

    old = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(Alarm):
            _atex._selftest_wait(30000)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_blocking_call_releases_gil():
    # Two 300 ms C waits in threads finish in well under 600 ms.
    threads = [threading.Thread(target=_atex._selftest_wait, args=(300,))
               for _ in range(2)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - start < 0.55


def test_log_records_reach_logging(atex_log):
    _atex._selftest_log(1, "ssh", "host 127.0.0.1: gone")
    _atex._selftest_log(3, "fmf", "debug line", 1, False)
    _atex.log_flush()
    got = [(r.name, r.levelno, r.getMessage()) for r in atex_log.records]
    assert ("atex.ssh", logging.WARNING, "host 127.0.0.1: gone") in got
    assert ("atex.fmf", logging.DEBUG, "debug line") in got


def test_log_percent_is_literal(atex_log):
    _atex._selftest_log(0, "x", "100% %s %d")
    _atex.log_flush()
    assert "100% %s %d" in [r.getMessage() for r in atex_log.records]


def test_log_many_threads_no_deadlock(atex_log):
    # Logging threads never wait for the GIL: a thread holding it (here
    # the main thread, spinning) does not stop them.
    threads = [threading.Thread(target=_atex._selftest_log,
                                args=(1, "t", "m", 2000)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
        assert not t.is_alive()
    _atex.log_flush()
    assert sum(r.name == "atex.t" for r in atex_log.records) == 8000


def test_log_level_follows_logging(monkeypatch):
    monkeypatch.delenv("ATEX_LOG", raising=False)
    logger = logging.getLogger("atex")
    old = logger.level
    try:
        logger.setLevel(logging.DEBUG)
        _atex.log_sync()
        assert _atex.log_level() == 3
        logger.setLevel(logging.ERROR)
        _atex.log_sync()
        assert _atex.log_level() == 0
    finally:
        logger.setLevel(old)
        _atex.log_sync()

"""atex.util: the helpers Python ATEX scripts use."""

import logging
import subprocess
import threading
import time
from pathlib import PurePath

import pytest

from atex import util


class Small(util.NamedMapping, required=("a",), default={"b": 2}):
    pass


class Big(Small, required=("c",)):
    pass


def test_named_mapping_reads():
    m = Small(a=1)
    assert m.a == 1 and m["b"] == 2 and "a" in m and len(m) == 2
    assert {**m} == {"a": 1, "b": 2}
    assert repr(m) == "Small(b=2, a=1)"
    with pytest.raises(AttributeError):
        m.missing


def test_named_mapping_read_only():
    m = Small(a=1)
    with pytest.raises(AttributeError):
        m.a = 5
    with pytest.raises(KeyError):
        m["a"] = 5
    with pytest.raises(KeyError):
        del m["a"]


def test_named_mapping_required_and_inheritance():
    with pytest.raises(KeyError, match="c"):
        Big(a=1)
    big = Big(a=1, c=3, extra=4)
    assert isinstance(big, Small)
    small = Small._from(big, x=9)
    assert dict(small) == {"a": 1, "b": 2, "x": 9}


def test_thread_join_value_exception_timeout():
    t = util.ThreadJoin(target=lambda x: x * 2, args=(21,))
    t.start()
    assert t.join() == 42

    def boom():
        raise ValueError("from the thread")

    t = util.ThreadJoin(target=boom)
    t.start()
    with pytest.raises(ValueError, match="from the thread"):
        t.join()

    t = util.ThreadJoin(target=time.sleep, args=(0.5,))
    t.start()
    with pytest.raises(TimeoutError):
        t.join(0.05)
    t.join()


def test_thread_join_queue():
    q = util.ThreadJoinQueue(daemon=True)
    q.start_thread(time.sleep, target_args=(0.2,), tag="slow")
    q.start_thread(lambda: "fast", tag="fast")
    first = q.get_raw(timeout=5)
    assert first.tag == "fast" and first.returned == "fast"
    assert first.exception is None
    assert q.get(timeout=5) is None

    def boom():
        raise OSError("x")

    q.start_thread(boom)
    with pytest.raises(OSError):
        q.get(timeout=5)
    with pytest.raises(q.Empty):
        q.get(block=False)
    q.join()
    assert q.qsize() == 0


def test_normalize_path():
    assert util.normalize_path("/etc/../../passwd") == PurePath("etc/passwd")
    assert util.normalize_path("a/./b\nc\x00") == PurePath("a/b_c_")
    assert util.normalize_path("..") == PurePath(".")


def test_get_loggers_numbers_instances():
    factory = util.get_loggers("atex.test.thing")
    a, b = factory(), factory()
    assert a.name == "atex.test.thing.0" and b.name == "atex.test.thing.1"
    assert isinstance(a, logging.Logger)


def test_dedent():
    assert util.dedent("""
        a
          b
    """) == "a\n  b"


def test_subprocess_stream_and_log(caplog):
    proc, lines = util.subprocess_stream(["cat"], input="x\ny\n")
    assert list(lines) == ["x", "y"]
    _, lines = util.subprocess_stream(["false"], check=True)
    with pytest.raises(subprocess.CalledProcessError):
        list(lines)
    caplog.set_level(logging.DEBUG)
    assert util.subprocess_log(["echo", "hello"]) == 0
    assert any(r.getMessage().endswith(": hello") for r in caplog.records)


def test_fmf_stand_in(tmp_path):
    import fmf

    if not getattr(fmf, "STAND_IN", False):
        # The real library is installed: the stand-in must not shadow it.
        assert "site-packages" in fmf.__file__ or "dist-packages" in fmf.__file__
        return
    (tmp_path / ".fmf").mkdir()
    (tmp_path / ".fmf" / "version").write_text("1\n")
    (tmp_path / "sub").mkdir()
    assert fmf.Tree(str(tmp_path / "sub")).root == str(tmp_path)
    with pytest.raises(fmf.utils.RootError):
        fmf.Tree("/proc/self")
    assert issubclass(fmf.utils.FetchError, fmf.utils.GeneralError)
    ctx = fmf.Context(distro="fedora-40", arch=["x86_64", "aarch64"])
    assert ctx.dimensions == {"distro": ["fedora-40"],
                              "arch": ["x86_64", "aarch64"]}


def test_start_stop_context():
    calls = []

    class Block(util.StartStop):
        def __init__(self, fail):
            self.fail = fail

        def start(self):
            calls.append("start")
            if self.fail:
                raise OSError("half started")

        def stop(self):
            calls.append("stop")

    with Block(False) as b:
        assert isinstance(b, Block)
    assert calls == ["start", "stop"]
    calls.clear()
    with pytest.raises(OSError, match="half started"):
        with Block(True):
            pass
    assert calls == ["start", "stop"]

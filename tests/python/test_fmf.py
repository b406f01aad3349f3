"""atex.executor.fmf.discover and FMFTests over libatex's fmf discovery:
every keyword, Python ATEX's selection (names/filters merged with the
plan's), the editable .data pushed back to C, the metadata helpers."""

import logging
import resource
import textwrap
import tracemalloc
from pathlib import Path

import pytest

import atex
import atex.executor.fmf
from atex import _atex
from atex.executor.fmf import FMFTests, discover
from atex.executor.fmf import metadata as md

MAIN = """
/plans:
  /filtered:
    discover:
      how: fmf
      filter: ['tag:-tagged']
      test: [/filters/filter3, /filters/filter4, /filters/filter5]
      exclude: [/filters/filter3]
    execute: {how: tmt}
  /with_env:
    discover: {how: fmf, test: /env}
    environment: {FROM_PLAN: plan value}
    prepare:
      - {how: install, package: [pkg-a, pkg-b]}
      - {how: shell, script: 'true'}
    execute: {how: tmt}
  /named:
    discover: {how: fmf, name: section, test: /simple}
    execute: {how: tmt}
  /two:
    discover:
      - {how: fmf, name: first, test: /simple}
      - {how: fmf, name: second, test: /sub/}
    execute: {how: tmt}
/simple:
  summary: Simple test
  test: ./test.sh
  require: some_package
  recommend: [rec-a, {type: library, name: /x}]
  duration: 5m
  order: 10
  tier: 1
  enabled: true
/env:
  test: ./test.sh
  environment: {FROM_TEST: test value}
/story:
  story: As a user
/manual:
  test: ./test.sh
  manual: true
/disabled:
  test: ./test.sh
  enabled: false
/adjusted:
  test: ./test.sh
  adjust:
    - when: distro == fedora-2
      extra: 123
    - when: arch == x86_64
      extra_arch: [1, 2]
/filters:
  test: ./test.sh
  tag: []
  /filter1:
    tag+: [tagged]
  /filter2:
  /filter3:
  /filter4:
  /filter5:
    extra_foobar: 123
"""

SUB = """
test: ./sub.sh
/one:
/two:
  duration: 1h
"""


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "tree"
    (root / ".fmf").mkdir(parents=True)
    (root / ".fmf" / "version").write_text("1\n")
    (root / "main.fmf").write_text(textwrap.dedent(MAIN))
    (root / "sub").mkdir()
    (root / "sub" / "main.fmf").write_text(textwrap.dedent(SUB))
    return root


def test_discover_whole_tree(tree):
    t = discover(tree)
    assert isinstance(t, FMFTests)
    # Tests only: no story, manual, disabled, branch; `order` first.
    assert list(t.data) == [
        "/simple",
        "/adjusted",
        "/env",
        "/filters/filter1",
        "/filters/filter2",
        "/filters/filter3",
        "/filters/filter4",
        "/filters/filter5",
        "/sub/one",
        "/sub/two",
    ]
    simple = t.data["/simple"]
    # Values keep their YAML types; a scalar stays a scalar.
    assert simple["require"] == "some_package"
    assert simple["duration"] == "5m"
    assert simple["order"] == 10 and simple["tier"] == 1
    assert simple["enabled"] is True
    assert simple["recommend"] == ["rec-a", {"type": "library", "name": "/x"}]
    assert t.sources["/simple"] == "."
    assert t.sources["/sub/one"] == "sub"
    assert t.root == tree and isinstance(t.root, Path)
    assert t.plan == {}
    assert str(t) == f"FMFTests(<holding 10 tests>, root={tree})"
    # A path inside the tree finds its root.
    assert list(discover(tree / "sub").data) == list(t.data)


def test_plan_filters(tree):
    t = discover(str(tree), "/plans/filtered")
    assert list(t.data) == ["/filters/filter4", "/filters/filter5"]
    assert t.plan["discover"]["exclude"] == ["/filters/filter3"]


def test_names_merge_with_plan(tree):
    # Python ATEX: names add to the plan's `test` names; its filter and
    # exclude still hold (tmt would intersect: nothing).
    t = discover(tree, "/plans/filtered", names=("/filter2",))
    assert list(t.data) == ["/filters/filter2", "/filters/filter4", "/filters/filter5"]
    t = discover(tree, "/plans/filtered", names=("/filter1", "/filter3"))
    assert list(t.data) == ["/filters/filter4", "/filters/filter5"]


def test_filters_merge_with_plan(tree):
    t = discover(tree, "/plans/filtered", filters=("extra_foobar: 123",))
    assert list(t.data) == ["/filters/filter5"]


def test_kwargs_without_plan(tree):
    t = discover(
        tree,
        filters=("tag:-tagged",),
        names=("/filters/filter3", "/filters/filter4", "/filters/filter1"),
        excludes=("/filters/filter3",),
        conditions=("'extra_foobar' not in locals()",),
    )
    assert list(t.data) == ["/filters/filter4"]
    assert set(t.sources) == {"/filters/filter4"}


def test_conditions(tree):
    # Evaluated with the test's data as locals; KeyError is False.
    t = discover(tree, conditions=("tier == 1",))
    assert list(t.data) == ["/simple"]  # a missing name is false too
    t = discover(tree, conditions=("'tier' in locals() and tier == 1",))
    assert list(t.data) == ["/simple"]
    t = discover(tree, conditions=("environment['FROM_TEST'] == 'test value'",))
    assert list(t.data) == ["/env"]
    # Several: all must hold.
    t = discover(tree, conditions=("'extra_foobar' in locals()", "extra_foobar > 100"))
    assert list(t.data) == ["/filters/filter5"]
    # The discovery itself lost the others too.
    assert [n for n, *_ in t._discovery.tests()] == ["/filters/filter5"]
    with pytest.raises(ValueError, match=r"condition '1/0' on test /simple: ZeroDivisionError"):
        discover(tree, conditions=("1/0",))


def test_context(tree):
    t = discover(tree, context={"distro": "fedora-2", "arch": "x86_64"})
    assert t.data["/adjusted"]["extra"] == 123
    assert t.data["/adjusted"]["extra_arch"] == [1, 2]
    t = discover(tree, context={"distro": "fedora-1"})
    assert "extra" not in t.data["/adjusted"]
    # A list of values, as fmf.Context takes.
    t = discover(tree, context={"distro": ["fedora-1", "fedora-2"]})
    assert t.data["/adjusted"]["extra"] == 123
    with pytest.raises(TypeError, match="dimension 5 is not a str"):
        discover(tree, context={5: "x"})


def test_plan_environment_and_prepare(tree):
    t = discover(tree, "/plans/with_env")
    assert list(t.data) == ["/env"]
    assert t.plan["environment"] == {"FROM_PLAN": "plan value"}
    # The test's environment is its own, not merged with the plan's.
    assert t.data["/env"]["environment"] == {"FROM_TEST": "test value"}
    assert set(md.all_pkg_requires(t)) == {"pkg-a", "pkg-b"}


def test_named_sections(tree):
    # A section the plan names prefixes its tests, even alone.
    t = discover(tree, "/plans/named")
    assert list(t.data) == ["/section/simple"]
    assert t.sources["/section/simple"] == "."
    t = discover(tree, "/plans/two")
    assert list(t.data) == ["/first/simple", "/second/sub/one", "/second/sub/two"]
    assert t.sources["/second/sub/two"] == "sub"


def test_tree_forms(tree):
    class FakeTree:
        root = str(tree)

    assert "/simple" in discover(FakeTree()).data
    assert "/simple" in discover({"path": str(tree)}).data
    with pytest.raises(ValueError, match="remote fmf id"):
        discover({"url": "https://example.com/x.git"})
    with pytest.raises(ValueError, match="needs 'path'"):
        discover({"ref": "main"})
    with pytest.raises(TypeError, match="not int"):
        discover(5)


def test_errors(tree, tmp_path):
    with pytest.raises(ValueError, match="/plans/nope"):
        discover(tree, "/plans/nope")
    with pytest.raises(FileNotFoundError):
        discover(tmp_path / "nothing-here")
    (tree / "bad.fmf").write_text("a: [unclosed\n")
    with pytest.raises(ValueError, match=r"bad\.fmf:"):
        discover(tree)
    (tree / "bad.fmf").unlink()
    with pytest.raises(ValueError, match="filter"):
        discover(tree, filters=("tag: [",))
    with pytest.raises(TypeError, match="names: expected a sequence of strings"):
        discover(tree, names="/simple")


def test_edits_reach_libatex(tree):
    t = discover(tree)
    d = t._discovery
    t.data["/simple"]["duration"] = "10m"
    t.data["/simple"]["new_key"] = {"nested": [1, 2.5, None, True]}
    del t.data["/filters/filter1"]
    del t.data["/sub/two"]
    assert t._sync() is d
    tests = {name: data for name, data, *_ in d.tests()}
    assert list(tests) == list(t.data)
    assert tests["/simple"]["duration"] == "10m"
    assert tests["/simple"]["new_key"] == {"nested": [1, 2.5, None, True]}
    # Only one test's data, as FMFExecutor.run_test pushes it.
    t.data["/env"]["duration"] = "1m"
    t.data["/simple"]["duration"] = "2m"
    t._sync(only="/env")
    tests = {name: data for name, data, *_ in d.tests()}
    assert tests["/env"]["duration"] == "1m"
    assert tests["/simple"]["duration"] == "10m"


def test_edits_refused(tree):
    t = discover(tree)
    t.data["/renamed"] = t.data.pop("/simple")
    with pytest.raises(ValueError, match="'/renamed' was added to FMFTests.data"):
        t._sync()
    t = discover(tree)
    t.data["/simple"] = ["not", "a", "dict"]
    with pytest.raises(TypeError, match=r"FMFTests.data\['/simple'\] is not a dict"):
        t._sync()
    t = discover(tree)
    t.data["/simple"]["bad"] = object()
    with pytest.raises(TypeError, match="/simple: not JSON-like data"):
        t._sync()
    made = FMFTests(plan={}, data={}, sources={}, root=tree)
    with pytest.raises(ValueError, match="made without discover"):
        made._sync()


def test_libraries(tree, caplog):
    # The executor fetches fmf libraries when it stages the tests:
    # discover() leaves `require` as written, with or without libraries=.
    caplog.set_level(logging.WARNING, logger="atex")
    a = discover(tree, names=("/simple",))
    b = discover(tree, names=("/simple",), libraries=False)
    assert a.data == b.data
    assert caplog.text == ""
    from atex.executor.fmf.discover import resolve_libraries

    with pytest.raises(NotImplementedError):
        resolve_libraries({}, None, None, None)


def test_module_layout():
    # The function and the submodule share the name, as in Python ATEX.
    assert callable(atex.executor.fmf.discover)
    import sys

    assert sys.modules["atex.executor.fmf.discover"].discover is discover
    assert atex.executor.fmf.__all__ == ("FMFExecutor", "FMFTests", "discover")
    for name in ("TestAbortedError", "TestSetupError", "all_pkg_requires",
                 "duration_to_seconds", "test_pkg_requires"):
        assert hasattr(atex.executor.fmf, name)


def test_metadata_helpers():
    listlike, duration_to_seconds = md.listlike, md.duration_to_seconds
    test_pkg_requires, all_pkg_requires = md.test_pkg_requires, md.all_pkg_requires
    assert listlike({"a": 1}, "a") == (1,)
    assert listlike({"a": [1, 2]}, "a") == [1, 2]
    assert listlike({"a": None}, "a") == ()
    assert listlike({}, "a") == ()
    assert duration_to_seconds("5m") == 300
    assert duration_to_seconds("2h") == 7200
    assert duration_to_seconds("1d") == 86400
    assert duration_to_seconds(30) == 30
    assert duration_to_seconds("15s") == 15
    with pytest.raises(ValueError, match="invalid fmf duration format: 1h 5m"):
        duration_to_seconds("1h 5m")
    data = {"require": ["a", {"type": "library"}, "b"], "recommend": "c"}
    assert list(test_pkg_requires(data)) == ["a", "b"]
    assert list(test_pkg_requires(data, "recommend")) == ["c"]
    t = FMFTests(
        plan={"prepare": {"how": "install", "package": "p"}},
        data={"/a": data, "/b": {"require": "a"}},
        sources={},
        root=Path("."),
    )
    assert sorted(all_pkg_requires(t)) == ["a", "b", "p"]
    assert sorted(all_pkg_requires(t, "recommend")) == ["c", "p"]


def test_discover_leak_loop(tree):
    # 10,000 discoveries (with every kwarg) and syncs: neither Python
    # objects nor C memory may grow with the count.
    def once():
        t = discover(tree, "/plans/filtered", names=("/filter2",), filters=("tag:-x",),
                     excludes=("/nothing",), conditions=("True",), context={"distro": "f"})
        t.data["/filters/filter2"]["duration"] = "1m"
        t._sync()

    for _ in range(200):
        once()
    tracemalloc.start()
    before_py = tracemalloc.get_traced_memory()[0]
    before_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(10000):
        once()
    after_py = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    after_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert after_py - before_py < 256 * 1024
    assert after_rss - before_rss < 16 * 1024  # KiB


def test_handle_is_atex():
    assert _atex.FMFDiscovery.__module__ == "atex._atex"


def test_unfetchable_remote_tree_is_fetch_error(tree, tmp_path):
    (tree / "remote.fmf").write_text(textwrap.dedent(f"""
        /plans/remote:
          discover:
            how: fmf
            url: file://{tmp_path}/no-such-repo
          execute: {{how: tmt}}
    """).replace("/plans/remote", "/remote_plan"))
    with pytest.raises(atex.executor.fmf.FetchError,
                       match="no-such-repo") as info:
        discover(str(tree), "/remote/remote_plan")
    import fmf

    assert isinstance(info.value, fmf.utils.FetchError)


PLAN_RULES = """
/plans:
  /noexec:
    discover: {how: fmf, test: /tests/a}
  /off:
    enabled: false
    discover: {how: fmf, test: /tests/b}
  /tmt:
    discover: {how: fmf}
    execute: {how: tmt}
/tests:
  test: ./t.sh
  /a:
  /b:
"""


def test_plan_is_any_leaf_that_is_not_a_test(tmp_path):
    # Python ATEX's rule, not tmt's: no `execute` needed, `enabled: false`
    # not looked at; a test or a node with children is refused by name.
    root = tmp_path / "rules"
    (root / ".fmf").mkdir(parents=True)
    (root / ".fmf" / "version").write_text("1\n")
    (root / "main.fmf").write_text(textwrap.dedent(PLAN_RULES))
    t = discover(root, "/plans/noexec")
    assert list(t.data) == ["/tests/a"]
    assert "execute" not in t.plan
    assert t.plan["discover"] == {"how": "fmf", "test": "/tests/a"}
    assert list(discover(root, "/plans/off").data) == ["/tests/b"]
    assert list(discover(root, "/plans/tmt").data) == ["/tests/a", "/tests/b"]
    with pytest.raises(ValueError, match="'/tests/a' is a test, not a plan"):
        discover(root, "/tests/a")
    with pytest.raises(ValueError, match="'/plans' has children: it is not one plan"):
        discover(root, "/plans")
    with pytest.raises(ValueError, match="no plan '/nope'.*plans here: /plans/tmt"):
        discover(root, "/nope")

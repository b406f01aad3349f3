#!/usr/bin/python3
"""A test campaign runner on the atex Python API (Python ATEX's shape).

Runs one fmf plan on several platforms at once, every platform with its
own pool of systems, all served from one loop in one thread:

- a custom next_test(): a fresh system takes a destructive test first (it
  is replaced after it anyway), a used one takes the other tests, the
  longest first (fmf `duration`);
- failed tests are re-run (--reruns), their failed attempts kept apart;
- final results go to an xz-compressed JSON Lines file, earlier attempts to
  old/results.jsonl (where atex.report finds them);
- a summary, report.html and junit.xml at the end; exit status 0 only
  when every final result passed.

usage: runner.py [--plan NAME] [--platform NAME]...
                 [--reruns N] [--spares N] --results DIR TREE

Here the systems are slots on this machine (LocalProvisioner); a real
campaign would take PodmanProvisioner or a cloud provisioner per platform.
    examples/python/runner.py --plan /plans/demo --platform a --platform b \\
        --results /tmp/campaign examples
"""

import argparse
import contextlib
import logging
import os
import sys
import time

import atex.report
from atex.aggregator.jsonl import JSONLinesAggregator, LZMAJSONLinesAggregator
from atex.executor.fmf import FMFExecutor, discover
from atex.executor.fmf.metadata import duration_to_seconds, listlike
from atex.orchestrator.adhoc import (
    AdHocOrchestrator,
    FMFDurationMixin,
    LimitedRerunsMixin,
)
from atex.provisioner.local import LocalProvisioner

log = logging.getLogger("runner")


def campaign_class(fmf_tests, reruns):
    """The orchestrator of one platform: re-runs, destructive tests on
    fresh systems, then longest first."""

    def destructive_test(name):
        return "destructive" in listlike(fmf_tests.data[name], "tag")

    class Campaign(LimitedRerunsMixin(reruns), FMFDurationMixin(fmf_tests),
                   AdHocOrchestrator):
        def next_test(self, to_run, previous, /):
            fresh = "test_name" not in previous  # SetupInfo, no test yet
            risky = [t for t in to_run if destructive_test(t)]
            if fresh and risky:
                pick = max(risky, key=self._seconds)
                log.info("%s: fresh %s takes destructive %s", self.platform,
                         previous.remote, pick)
                return pick
            safe = [t for t in to_run if not destructive_test(t)]
            # a used system keeps away from destructive tests while
            # others are left (a fresh one will come for them)
            pool = dict.fromkeys(safe or to_run).keys()
            return super().next_test(pool, previous)

        def destructive(self, info, /):
            if destructive_test(info.test_name):
                return True
            return super().destructive(info)

        @staticmethod
        def _seconds(name):
            return duration_to_seconds(fmf_tests.data[name].get("duration",
                                                                "5m"))

    return Campaign


def run(args):
    fmf_tests = discover(args.tree, args.plan)
    if not fmf_tests.data:
        log.error("no tests selected in %s (plan %s)", args.tree, args.plan)
        return 2
    log.info("%d tests on %s", len(fmf_tests.data), ", ".join(args.platform))
    os.makedirs(args.results, exist_ok=True)
    target = os.path.join(args.results, "results.jsonl.xz")
    cls = campaign_class(fmf_tests, args.reruns)

    with contextlib.ExitStack() as stack:
        final = stack.enter_context(LZMAJSONLinesAggregator(
            target, os.path.join(args.results, "files"), compress_preset=6))
        os.makedirs(os.path.join(args.results, "old"), exist_ok=True)
        earlier = stack.enter_context(JSONLinesAggregator(
            os.path.join(args.results, "old", "results.jsonl"),
            os.path.join(args.results, "old", "files"),
            allow_duplicate=True))
        orchestrators = []
        for platform in args.platform:
            prov = stack.enter_context(LocalProvisioner())
            orch = cls(platform, fmf_tests.data.keys(), (prov,),
                       lambda remote: FMFExecutor(remote, fmf_tests,
                                                  env={"CAMPAIGN": "demo"}),
                       final, old_aggregator=earlier, max_spares=args.spares)
            orchestrators.append(stack.enter_context(orch))

        # one thread serves every platform; each serve_once() is short
        t0 = time.monotonic()
        alive = orchestrators
        while alive:
            alive = [o for o in alive if o.serve_once()]
            time.sleep(0.05)
        log.info("all platforms done in %.1f s", time.monotonic() - t0)

    results = atex.report.load(target)
    results.summary()
    results.html(os.path.join(args.results, "report.html"),
                 title=f"{args.plan or 'tests'} on {len(args.platform)} "
                       "platforms")
    results.junit(os.path.join(args.results, "junit.xml"))
    return 0 if results.passed else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--plan", default=None)
    ap.add_argument("--platform", action="append")
    ap.add_argument("--reruns", type=int, default=1)
    ap.add_argument("--spares", type=int, default=0)
    ap.add_argument("--results", required=True)
    ap.add_argument("tree")
    args = ap.parse_args()
    args.platform = args.platform or ["local-a", "local-b"]
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(name)s: %(message)s")
    try:
        return run(args)
    except KeyboardInterrupt:
        log.error("interrupted: every system was released")
        return 130


if __name__ == "__main__":
    sys.exit(main())

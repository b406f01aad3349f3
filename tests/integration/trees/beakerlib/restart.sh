#!/bin/bash
# A phase, then exit 3 on the first start (restart-on-exit-code: 3); the
# second start (TMT_TEST_RESTART_COUNT=1) goes on with the same journal.
. "${BEAKERLIB:-/usr/share/beakerlib}/beakerlib.sh" || exit 1

rlJournalStart
if [[ $TMT_TEST_RESTART_COUNT == 0 || ${1:-} == always ]]; then
    rlPhaseStartTest first
        rlPass "first start"
    rlPhaseEnd
    exit 3
fi
    rlPhaseStartTest second
        rlAssertEquals "restarted once" "$TMT_TEST_RESTART_COUNT" 1
    rlPhaseEnd
rlJournalEnd

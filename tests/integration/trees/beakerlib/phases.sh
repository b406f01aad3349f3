#!/bin/bash
. "${BEAKERLIB:-/usr/share/beakerlib}/beakerlib.sh" || exit 1

rlJournalStart
    rlPhaseStartSetup
        rlRun "true" 0 "Setting up"
        [[ $1 == warn ]] && rlFail "setup went wrong"
    rlPhaseEnd
    rlPhaseStartTest "the main phase"
        rlAssertEquals "one is one" 1 1
        [[ $1 == fail ]] && rlRun "false" 0 "Running false"
    rlPhaseEnd
    [[ $1 == unfinished ]] && exit 0
    if [[ $1 == empty ]]; then
        rlPhaseStartTest "////"
            rlPass "a phase without a name"
        rlPhaseEnd
    fi
    rlPhaseStartCleanup
        rlAssert0 "cleaned up" 0
    rlPhaseEnd
rlJournalPrintText
rlJournalEnd

#!/bin/bash
. "${BEAKERLIB:-/usr/share/beakerlib}/beakerlib.sh" || exit 1
export BEAKERLIB_LIBRARY_PATH=/nonexistent:$PWD/libs

rlJournalStart
    rlPhaseStartTest
        rlRun "rlImport mylib/hello" 0 "Importing mylib/hello"
        rlAssertEquals "the library's function" "$(helloSay)" "hello from mylib"
    rlPhaseEnd
rlJournalPrintText
rlJournalEnd

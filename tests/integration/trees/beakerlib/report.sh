#!/bin/bash
. "${BEAKERLIB:-/usr/share/beakerlib}/beakerlib.sh" || exit 1

rlJournalStart
    rlPhaseStartTest
        rlReport "some result name" FAIL
        rlRun "echo some log content > logfile.txt"
        rlReport "result name with log" PASS 0 logfile.txt
        rm -f logfile.txt
    rlPhaseEnd
rlJournalPrintText
rlJournalEnd

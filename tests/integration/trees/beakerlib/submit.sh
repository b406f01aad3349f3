#!/bin/bash
. "${BEAKERLIB:-/usr/share/beakerlib}/beakerlib.sh" || exit 1

rlJournalStart
    rlPhaseStartTest
        rlRun "echo some log content > log.txt"
        rlFileSubmit log.txt
        rlFileSubmit log.txt "custom log name.txt"
        rm -f log.txt
    rlPhaseEnd
rlJournalPrintText
rlJournalEnd

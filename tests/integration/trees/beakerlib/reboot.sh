#!/bin/bash
. "${BEAKERLIB:-/usr/share/beakerlib}/beakerlib.sh" || exit 1

rlJournalStart
    if [[ $TMT_REBOOT_COUNT -eq 0 ]]; then
        rlPhaseStartTest before
            rlRun "echo '$BEAKERLIB_DIR' > '$BEAKERLIB_DIR/marker'" 0 "Marking before reboot"
        rlPhaseEnd
        # The "reboot" kills the test's process group, as a reboot would
        # (after BL_BOOT_CMD, which the test sets to change the boot id
        # of a connection that can reboot).
        rhts-reboot -c "${BL_BOOT_CMD:-:}; kill -KILL 0"
    else
        rlPhaseStartTest after
            rlRun "grep -qxF '$BEAKERLIB_DIR' '$BEAKERLIB_DIR/marker'" 0 "Same BEAKERLIB_DIR after reboot"
        rlPhaseEnd
    fi
rlJournalPrintText
rlJournalEnd

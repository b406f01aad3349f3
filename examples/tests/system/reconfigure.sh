#!/bin/bash
# Pretends to reconfigure the system: edits a copy of a configuration file
# in its scratch directory and checks the change. The fmf tag
# "destructive" is what makes the orchestrator replace the system after it.
set -e -o pipefail
. ../lib/control.sh

conf=$scratch/sysctl.conf
printf 'net.ipv4.ip_forward = 0\nvm.swappiness = 60\n' >"$conf"
sleep 0.7
sed -i 's/^vm.swappiness = .*/vm.swappiness = 10/' "$conf"
grep -qx 'vm.swappiness = 10' "$conf"
sleep 0.8
report '{"status": "pass", "testout": "output.txt", "note": "system reconfigured (a copy of sysctl.conf)"}' "$conf"

#!/bin/bash
# A BeakerLib library for trees/beakerlib/import.sh.
helloSay() { echo "hello from mylib"; }

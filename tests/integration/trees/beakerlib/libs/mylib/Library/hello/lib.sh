#!/bin/bash
#   library-prefix = hello
# A BeakerLib library for trees/beakerlib/import.sh.
helloSay() { echo "hello from mylib"; }
helloLibraryLoaded() { return 0; }

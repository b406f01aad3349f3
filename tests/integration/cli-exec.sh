#!/bin/sh
echo "cli-exec: not written yet" >&2
exit 1

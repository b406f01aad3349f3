#!/bin/bash
sleep 0.1
exit 3

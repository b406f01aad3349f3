# shellcheck shell=bash
certgen_version=v1

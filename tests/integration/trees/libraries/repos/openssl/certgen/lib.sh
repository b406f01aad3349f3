# shellcheck shell=bash
#   library-prefix = certgen
certgen_version=v1
certgenLibraryLoaded() { return 0; }

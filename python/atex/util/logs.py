"""Loggers numbered per instance ("atex.provisioner.podman.3")."""

import itertools
import logging
import threading

_counters = {}
_lock = threading.Lock()


def get_loggers(name):
    """A factory: each call returns the logger ``name.N`` with the next N,
    so that instances of one class log apart while
    ``logging.getLogger(name)`` still configures them all."""
    with _lock:
        counter = _counters.setdefault(name, itertools.count())

    def get_logger():
        with _lock:
            number = next(counter)
        return logging.getLogger(f"{name}.{number}")

    return get_logger

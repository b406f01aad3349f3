"""Subprocesses whose output is read line by line."""

import logging
import subprocess


def subprocess_stream(cmd, *, stream="stdout", check=False, input=None,
                      **kwargs):
    """Starts ``cmd`` (subprocess.Popen, text mode) and returns
    ``(proc, lines)``: ``lines`` iterates over what it writes on
    ``stream`` ("stdout" or "stderr"), without newlines. ``input`` is
    written first; with ``check`` a failing exit raises CalledProcessError
    once the lines are read."""
    options = {"text": True, stream: subprocess.PIPE}
    if input is not None:
        options["stdin"] = subprocess.PIPE
    options.update(kwargs)
    proc = subprocess.Popen(cmd, **options)

    def lines():
        if input is not None:
            try:
                proc.stdin.write(input)
                proc.stdin.close()
            except BrokenPipeError:
                pass
        for line in getattr(proc, stream):
            yield line.rstrip("\n")
        code = proc.wait()
        if check and code != 0:
            raise subprocess.CalledProcessError(code, cmd)

    return proc, lines()


def subprocess_log(cmd, *, logger=None, level=logging.DEBUG, **kwargs):
    """Runs ``cmd`` and logs each line it prints; returns its exit
    code."""
    logger = logger or logging.getLogger("atex")
    proc, lines = subprocess_stream(cmd, **kwargs)
    logger.log(level, "subprocess_log %d: %r with %r", proc.pid, cmd, kwargs)
    for line in lines:
        logger.log(level, "subprocess_log %d: %s", proc.pid, line)
    return proc.returncode

"""Threads whose join() hands back the target's result or exception."""

import queue
import threading

from .mapping import NamedMapping


class ThreadResult:
    """A finished call: ``value`` or ``exception``; result() gives the
    value or raises the exception."""

    def __init__(self, value=None, exception=None):
        self.value = value
        self.exception = exception

    def result(self):
        if self.exception is not None:
            raise self.exception
        return self.value


class ThreadJoin(threading.Thread):
    """A Thread whose join() returns what the target returned, re-raises
    what it raised, and raises TimeoutError when the thread is still
    alive after ``timeout``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._outcome = ThreadResult()

    def run(self):
        try:
            if self._target is not None:
                self._outcome.value = self._target(*self._args,
                                                   **self._kwargs)
        except BaseException as exc:  # handed to join(), not lost
            self._outcome.exception = exc
        finally:
            del self._target, self._args, self._kwargs

    def join(self, timeout=None):
        super().join(timeout)
        if self.is_alive():
            raise TimeoutError(f"{self.name} still running after {timeout} s")
        return self._outcome.result()


class ThreadJoinQueue:
    """One thread per call; their outcomes arrive on one queue in the
    order they finish (get() / get_raw()). Keyword arguments given to
    start_thread() beyond the target's travel with its outcome."""

    class ThreadResult(NamedMapping,
                       required=("thread", "returned", "exception")):
        pass

    Empty = queue.Empty

    def __init__(self, daemon=False):
        self.daemon = daemon
        self._results = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = set()

    def _run(self, target, args, kwargs, extra):
        me = threading.current_thread()
        try:
            outcome = self.ThreadResult(thread=me,
                                        returned=target(*args, **kwargs),
                                        exception=None, **extra)
        except BaseException as exc:  # handed to get(), not lost
            outcome = self.ThreadResult(thread=me, returned=None,
                                        exception=exc, **extra)
        self._results.put(outcome)

    def start_thread(self, target, *, target_args=None, target_kwargs=None,
                     **user_kwargs):
        thread = threading.Thread(
            target=self._run,
            args=(target, tuple(target_args or ()), dict(target_kwargs or {}),
                  user_kwargs),
            daemon=self.daemon)
        with self._lock:
            self._threads.add(thread)
        thread.start()

    def get_raw(self, block=True, timeout=None):
        outcome = self._results.get(block=block, timeout=timeout)
        with self._lock:
            self._threads.discard(outcome.thread)
        return outcome

    def get(self, block=True, timeout=None):
        outcome = self.get_raw(block, timeout)
        if outcome.exception is not None:
            raise outcome.exception
        return outcome.returned

    def join(self):
        """Waits for every thread started so far (the queue is left as it
        is)."""
        while True:
            with self._lock:
                if not self._threads:
                    return
                thread = self._threads.pop()
            thread.join()

    def qsize(self):
        return self._results.qsize()

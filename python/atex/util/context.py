"""The context manager every start()/stop() block shares."""


class StartStop:
    """``with obj:`` calls start() on entry and stop() on exit; stop()
    also when start() failed (part of it may need undoing)."""

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        self.stop()

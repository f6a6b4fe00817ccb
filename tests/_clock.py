"""A fake clock for tests: stands in for the ``time`` module inside a module under test (patch its
``time`` attribute), so time moves only when the test says so."""


class FakeClock(object):
    def __init__(self):
        self.now = 1000.0

    def advance(self, ms):
        self.now += ms / 1000.0

    def perf_counter(self):
        return self.now

    def monotonic(self):
        return self.now

    def time(self):
        return 1.7e9 + self.now

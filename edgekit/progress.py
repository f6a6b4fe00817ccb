"""Progress bars: tqdm where installed (desktop), a quiet line printer otherwise (device)."""

import sys
import time


class _Simple(object):
    def __init__(self, total=None, desc="", disable=False, **_):
        self.total, self.desc, self.disable, self.n = total, desc, disable, 0
        self._last = 0.0

    def update(self, n=1):
        self.n += n
        now = time.monotonic()
        if not self.disable and now - self._last > 2.0:
            self._last = now
            total = "/%d" % self.total if self.total else ""
            sys.stderr.write("%s: %d%s\n" % (self.desc, self.n, total))

    def set_postfix(self, *args, **kwargs):
        pass

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def progress(total=None, desc="", disable=None, **kwargs):
    """A progress bar on stderr; disabled when stderr is not a terminal unless asked for."""
    if disable is None:
        disable = not sys.stderr.isatty()
    try:
        from tqdm import tqdm
    except ImportError:
        return _Simple(total=total, desc=desc, disable=disable)
    return tqdm(total=total, desc=desc, disable=disable, file=sys.stderr, dynamic_ncols=True, **kwargs)


def say(message):
    """A status line for people, on stderr (stdout stays clean for JSON)."""
    sys.stderr.write(message.rstrip("\n") + "\n")
    sys.stderr.flush()


def warn(message):
    say("warning: " + message)

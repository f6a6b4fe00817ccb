"""JSON Lines output with size-based rotation and no torn lines.

Each record becomes one line written with a single ``os.write`` on an ``O_APPEND`` descriptor
(looping only on a short write) and flushed to the kernel at once, so a SIGTERM or a crash of the
daemon never leaves half a line behind; rotation happens between lines: when the next line would
push the file past ``max_bytes``, ``results.jsonl`` becomes ``results.jsonl.1`` (``.1`` becomes
``.2`` ... up to ``backups``; the oldest is deleted) and a new file starts. Should power fail in
the middle of a write, the next start cuts a trailing partial line off before appending.
"""

import json
import os

from edgekit.errors import ConfigError
from edgekit.service.sinks.base import QueuedSink


def _json_default(obj):
    if hasattr(obj, "tolist"):        # numpy scalars and arrays
        return obj.tolist()
    return str(obj)


def repair_tail(path):
    """Truncate a trailing partial line (from a power cut); returns the bytes removed."""
    try:
        size = os.path.getsize(path)
    except OSError:
        return 0
    if size == 0:
        return 0
    with open(path, "rb+") as handle:
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return 0
        # find the last newline, reading backwards in blocks
        pos = size
        while pos > 0:
            start = max(0, pos - 65536)
            handle.seek(start)
            block = handle.read(pos - start)
            idx = block.rfind(b"\n")
            if idx >= 0:
                keep = start + idx + 1
                handle.truncate(keep)
                return size - keep
            pos = start
        handle.truncate(0)
        return size


class JsonlSink(QueuedSink):
    """``JsonlSink(path, max_bytes=10 MiB, backups=5, queue=256, metrics=None)``."""

    name = "jsonl"

    def __init__(self, path, max_bytes=10 * 1024 * 1024, backups=5, queue=256, metrics=None, fsync=False):
        super(JsonlSink, self).__init__(maxsize=queue, metrics=metrics)
        if max_bytes is not None and max_bytes < 1024:
            raise ConfigError("jsonl max_bytes must be at least 1024, got %r" % (max_bytes,),
                              hint="give a size in bytes, e.g. 10485760")
        if backups < 0:
            raise ConfigError("jsonl backups must be >= 0, got %r" % (backups,), hint="e.g. 5")
        self.path = os.path.abspath(path)
        self.max_bytes = max_bytes
        self.backups = int(backups)
        self.fsync = fsync
        self.rotations = 0
        self.lines = 0
        self._fd = None
        self._size = 0
        if os.path.islink(self.path):
            raise ConfigError("cannot write %s: it is a symlink" % self.path, hint="give the real file path")
        directory = os.path.dirname(self.path)
        if not os.path.isdir(directory) or not os.access(directory, os.W_OK):
            raise ConfigError("cannot write %s: directory missing or not writable" % self.path,
                              hint="create the directory / fix its permissions")
        self.repaired_bytes = repair_tail(self.path)
        # opened at the first line: a daemon that fails to start leaves no empty file behind

    def _open(self):
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
        try:
            self._fd = os.open(self.path, flags, 0o644)
        except OSError as exc:
            raise ConfigError("cannot write %s: %s" % (self.path, exc.strerror or exc),
                              hint="check the directory exists and is writable (and is not a symlink)")
        self._size = os.fstat(self._fd).st_size

    def _rotate(self):
        os.close(self._fd)
        self._fd = None
        if self.backups == 0:
            os.unlink(self.path)
        else:
            for i in range(self.backups - 1, 0, -1):
                older = "%s.%d" % (self.path, i)
                if os.path.exists(older):
                    os.replace(older, "%s.%d" % (self.path, i + 1))
            os.replace(self.path, self.path + ".1")
        self.rotations += 1
        self._open()

    def write_line(self, record):
        """Write one record as one line (used by the worker; callable directly in tests)."""
        data = (json.dumps(record, separators=(",", ":"), default=_json_default) + "\n").encode("utf-8")
        if self._fd is None:
            self._open()
        if self.max_bytes and self._size > 0 and self._size + len(data) > self.max_bytes:
            self._rotate()
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        if self.fsync:
            os.fsync(self._fd)
        self._size += len(data)
        self.lines += 1

    def handle(self, record, frame):
        self.write_line(record)

    def on_close(self):
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.fsync(fd)
            except OSError:
                pass
            os.close(fd)

    def close(self, timeout=2.0):
        started = self._thread is not None
        super(JsonlSink, self).close(timeout)
        if not started:
            self.on_close()

    def stats(self):
        out = super(JsonlSink, self).stats()
        out.update({"path": self.path, "lines": self.lines, "rotations": self.rotations})
        return out

"""The pre-roll ring: the last ``pre_s`` seconds of one camera as encoded JPEG bytes (never raw frames).

``PreRollRing(pre_s, max_mb, quality)``; ``push(frame, t)`` encodes the BGR frame and appends it with its
capture time; frames older than ``pre_s`` before the newest go, except the newest of those (so a clip
can start at or before ``t - pre_s``: at most one frame late); when the JPEG bytes exceed ``max_mb``
the oldest are dropped first and counted (``dropped_cap``): then the ring holds less than ``pre_s``.
"""

import collections
import threading


from edgekit.errors import ConfigError
from edgekit.vision.draw import encode_jpeg

DEFAULT_QUALITY = 80          # cv2's own default is 95; 80 is a third of the bytes and looks the same on video


class EncodedFrame(object):
    """One encoded frame: ``jpeg`` bytes, capture time ``t`` (s), ``size`` (w, h), ``seq``."""

    __slots__ = ("jpeg", "t", "size", "seq")

    def __init__(self, jpeg, t, size, seq):
        self.jpeg = jpeg
        self.t = t
        self.size = size
        self.seq = seq


def positive(name, value, zero=False):
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ConfigError("%s must be a number, got %r" % (name, value))
    if value < 0 or (value == 0 and not zero) or value != value:
        raise ConfigError("%s must be %s, got %r" % (name, ">= 0" if zero else "> 0", value))
    return value


class PreRollRing(object):
    def __init__(self, pre_s=5.0, max_mb=64.0, quality=DEFAULT_QUALITY):
        self.pre_s = positive("pre_s", pre_s, zero=True)
        self.max_bytes = int(positive("max_mb", max_mb) * 1e6)
        quality = int(quality)
        if not 1 <= quality <= 100:
            raise ConfigError("jpeg quality must be 1..100, got %r" % quality)
        self.quality = quality
        self.frames = collections.deque()
        self.bytes = 0
        self.pushed = 0
        self.dropped_cap = 0          # frames dropped because of max_mb while still within pre_s
        self.seq = 0
        self.lock = threading.Lock()

    def push(self, frame, t):
        """Encode ``frame`` (BGR uint8 H x W x 3) and keep it; returns the EncodedFrame."""
        jpeg = encode_jpeg(frame, self.quality)
        h, w = frame.shape[:2]
        return self.push_encoded(jpeg, t, (int(w), int(h)))

    def push_encoded(self, jpeg, t, size):
        with self.lock:
            self.seq += 1
            item = EncodedFrame(jpeg, float(t), size, self.seq)
            self.frames.append(item)
            self.bytes += len(jpeg)
            self.pushed += 1
            horizon = item.t - self.pre_s
            frames = self.frames
            while len(frames) > 1 and frames[1].t <= horizon:
                self.bytes -= len(frames.popleft().jpeg)
            while self.bytes > self.max_bytes and len(frames) > 1:
                self.bytes -= len(frames.popleft().jpeg)
                self.dropped_cap += 1
            return item

    def since(self, start):
        """The frames from the last one at or before ``start`` on (the first may be up to a frame early)."""
        with self.lock:
            frames = list(self.frames)
        first = 0
        for i, item in enumerate(frames):
            if item.t <= start:
                first = i
            else:
                break
        return frames[first:]

    def span_s(self):
        with self.lock:
            return self.frames[-1].t - self.frames[0].t if len(self.frames) > 1 else 0.0

    def stats(self):
        with self.lock:
            return {"frames": len(self.frames), "bytes": self.bytes, "mb": round(self.bytes / 1e6, 3),
                    "span_s": round(self.frames[-1].t - self.frames[0].t, 3) if len(self.frames) > 1 else 0.0,
                    "pushed": self.pushed, "dropped_cap": self.dropped_cap, "max_mb": self.max_bytes / 1e6,
                    "pre_s": self.pre_s, "quality": self.quality}

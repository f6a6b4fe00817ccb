"""Moving coloured shapes, for demos and tests: ``synthetic://?width=640&height=480&fps=30&frames=0&seed=0``.

Frame ``n`` depends only on (n, seed, size): deterministic. ``fps`` paces the frames like a camera
(newest frame kept, misses dropped); ``fps=0`` delivers every frame as fast as the consumer takes
them. ``frames=N`` ends the stream after N frames (0: endless).
"""

import numpy as np

from edgekit.sources.base import Pacer, Source, no_more_params, parse_query, take_int

PARAMS = ["width", "height", "fps", "frames", "seed"]
COLOURS = ((0, 0, 255), (0, 200, 0), (255, 80, 0), (0, 220, 220), (200, 0, 200), (255, 255, 255))


def synthetic_frame(n, width, height, seed=0):
    """Frame number n (BGR uint8): a dark gradient and three shapes on their own paths."""
    import cv2

    y = np.linspace(30, 90, height, dtype=np.float32)[:, None]
    x = np.linspace(0, 40, width, dtype=np.float32)[None, :]
    base = (y + x).astype(np.uint8)
    image = np.dstack([base, base, (base // 2).astype(np.uint8)])
    rng = np.random.RandomState(seed)
    speeds = rng.uniform(0.004, 0.012, size=(3, 2))
    phases = rng.uniform(0, 1, size=(3, 2))
    colours = [COLOURS[i] for i in rng.permutation(len(COLOURS))[:3]]
    r = max(4, min(width, height) // 10)
    for k in range(3):
        fx, fy = (phases[k] + speeds[k] * n) % 2.0
        fx, fy = (2.0 - fx if fx > 1 else fx), (2.0 - fy if fy > 1 else fy)     # bounce
        cx, cy = int(r + fx * (width - 2 * r)), int(r + fy * (height - 2 * r))
        if k == 0:
            cv2.circle(image, (cx, cy), r, colours[k], -1)
        elif k == 1:
            cv2.rectangle(image, (cx - r, cy - r), (cx + r, cy + r), colours[k], -1)
        else:
            pts = np.array([[cx, cy - r], [cx - r, cy + r], [cx + r, cy + r]], dtype=np.int32)
            cv2.fillPoly(image, [pts], colours[k])
    cv2.putText(image, "%06d" % n, (8, height - 8), cv2.FONT_HERSHEY_SIMPLEX, max(0.3, height / 960.0),
                (255, 255, 255), 1)
    return image


class SyntheticSource(Source):
    scheme = "synthetic"

    def __init__(self, uri="synthetic://", **opts):
        uri = str(uri)
        _, params = parse_query(uri)
        self.width = take_int(params, "width", 640, uri, 16)
        self.height = take_int(params, "height", 480, uri, 16)
        self.fps = take_int(params, "fps", 30, uri, 0)
        self.limit = take_int(params, "frames", 0, uri, 0)
        self.seed = take_int(params, "seed", 0, uri, 0)
        no_more_params(params, uri, PARAMS)
        opts.setdefault("lossless", self.fps == 0)
        super(SyntheticSource, self).__init__(uri, **opts)
        self.finite = self.limit > 0
        self._n = 0
        self._pacer = Pacer(self.fps, self._stop)

    def _open(self):
        self._n = 0

    def _grab(self):
        if self.limit and self._n >= self.limit:
            return None
        self._pacer.wait()
        image = synthetic_frame(self._n, self.width, self.height, self.seed)
        self._n += 1
        return image

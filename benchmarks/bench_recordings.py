"""Recordings (issue 19): memory of the pre-roll ring per camera at 720p, 10 s, and the cost of putting
a frame into it (one JPEG encode on the inference thread) against the frame time at 30 fps.

Two kinds of 720p frames: the synthetic source's (flat gradient + shapes: compresses far better than a
camera) and the same with sensor-like noise (Gaussian, sigma 4), closer to a real camera's bytes. The
ring's JPEG quality is its default (80); cv2's own default (95) is context. The encode cost is
measured for both kinds side by side (alternating blocks), median of the blocks. Runs in < 1 minute.
"""

import time

import numpy as np

import _common

W, H, FPS, PRE_S = 1280, 720, 30.0, 10.0


def frames(kind, n=60):
    from edgekit.sources.synthetic import synthetic_frame

    rng = np.random.RandomState(0)
    out = []
    for i in range(n):
        f = synthetic_frame(i, W, H, seed=1)
        if kind == "noisy":
            f = np.clip(f.astype(np.int16) + rng.normal(0, 4, f.shape).astype(np.int16), 0, 255).astype(np.uint8)
        out.append(f)
    return out


def fill(images, quality):
    """A 10 s ring at 30 fps filled from ``images`` (cycled) -> its stats."""
    from edgekit.recordings.ring import PreRollRing

    ring = PreRollRing(pre_s=PRE_S, max_mb=10000, quality=quality)
    n = int(PRE_S * FPS) + 1
    for i in range(n):
        ring.push(images[i % len(images)], i / FPS)
    return ring.stats()


def encode_block(images, quality, count=30):
    from edgekit.recordings.ring import PreRollRing

    ring = PreRollRing(pre_s=1.0, max_mb=1000, quality=quality)
    start = time.perf_counter()
    for i in range(count):
        ring.push(images[i % len(images)], i / FPS)
    return (time.perf_counter() - start) * 1000.0 / count


def main():
    from edgekit.recordings.ring import DEFAULT_QUALITY

    claims = []
    data = {"frame": [W, H], "fps": FPS, "pre_s": PRE_S, "quality": DEFAULT_QUALITY}
    sets = {"synthetic": frames("synthetic"), "noisy": frames("noisy")}
    raw_mb = W * H * 3 * (PRE_S * FPS + 1) / 1e6
    memory = {}
    for kind, images in sets.items():
        memory[kind] = {"q%d" % DEFAULT_QUALITY: fill(images, DEFAULT_QUALITY), "q95": fill(images, 95)}
    data["memory"] = memory
    data["raw_mb"] = raw_mb
    noisy = memory["noisy"]["q%d" % DEFAULT_QUALITY]["mb"]
    claims.append(_common.claim("pre-roll ring memory per camera, 720p 10 s at 30 fps, camera-like frames (JPEG q%d)"
                                % DEFAULT_QUALITY, noisy, "<= 64", unit=" MB", ok=noisy <= 64))
    claims.append(_common.claim("ring memory / raw frames, same 10 s", noisy / raw_mb, "<= 0.1", ok=noisy / raw_mb <= 0.1))
    print("context: synthetic frames %.1f MB (q%d), %.1f MB at q95; camera-like %.1f MB at q95; raw frames %.0f MB"
          % (memory["synthetic"]["q%d" % DEFAULT_QUALITY]["mb"], DEFAULT_QUALITY, memory["synthetic"]["q95"]["mb"],
             memory["noisy"]["q95"]["mb"], raw_mb))

    fns = dict((kind, (lambda images=images: encode_block(images, DEFAULT_QUALITY))) for kind, images in sets.items())
    for fn in fns.values():
        fn()
    results = _common.alternate(fns, repeats=7)
    data["encode_ms_per_frame"] = results
    frame_ms = 1000.0 / FPS
    for kind in ("noisy", "synthetic"):
        ms = _common.median(results[kind])
        ratio = ms / frame_ms
        label = "camera-like" if kind == "noisy" else "synthetic"
        claims.append(_common.claim("ring encode per frame / frame time at 30 fps, 720p %s frames" % label, ratio,
                                    "<= 0.25", ok=ratio <= 0.25))
        print("context: %s: %.2f ms per frame into the ring (JPEG q%d + bookkeeping), frame time %.1f ms"
              % (label, ms, DEFAULT_QUALITY, frame_ms))
    data["claims"] = claims
    _common.write("recordings", data)


if __name__ == "__main__":
    main()

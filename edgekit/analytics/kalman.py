"""A constant-velocity Kalman filter on boxes as (centre x, centre y, aspect w/h, height), run on all
tracks at once.

The noise model is ByteTrack's (itself DeepSORT's): position noise 1/20 of the box height, velocity
noise 1/160 of it, per frame of a 30 fps video. Here the velocities are in pixels per *second* and
the process noise grows with the time step ``dt`` in seconds (its variance is the per-frame
variance times ``dt * 30``), so a camera read at 5 frames/s and one at 30 predict the same motion and
the same uncertainty per second of video.

In that model each of the four coordinates moves on its own: the transition couples a coordinate
only with its own velocity, and the noise and measurement covariances are diagonal. The 8 x 8
covariance therefore stays four independent 2 x 2 blocks, and this module keeps just those:
``cov`` is T x 3 x 4 (per coordinate: position variance, position-velocity covariance, velocity
variance). That is the full filter's arithmetic, done as vector operations instead of batched 8 x 8
matrix products (the tests compare it with the full-matrix filter).
"""

import numpy as np

REF_FPS = 30.0
STD_POS = 1.0 / 20
STD_VEL = 1.0 / 160 * REF_FPS        # per second
# per coordinate (x, y, a, h): the factors of the height in the standard deviations, and the
# constant parts for the aspect ratio (ByteTrack's 1e-2 / 1e-5 per frame; 1e-1 measurement noise)
_H = np.array([1.0, 1.0, 0.0, 1.0])
_A = np.array([0.0, 0.0, 1.0, 0.0])


def xyxy_to_xyah(boxes):
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    w = boxes[:, 2] - boxes[:, 0]
    h = np.maximum(boxes[:, 3] - boxes[:, 1], 1e-6)
    out = np.empty_like(boxes)
    out[:, 0] = boxes[:, 0] + w / 2
    out[:, 1] = boxes[:, 1] + h / 2
    out[:, 2] = w / h
    out[:, 3] = h
    return out


def xyah_to_xyxy(xyah):
    xyah = np.asarray(xyah, dtype=np.float64).reshape(-1, 4)
    h = xyah[:, 3]
    w = xyah[:, 2] * h
    out = np.empty_like(xyah)
    out[:, 0] = xyah[:, 0] - w / 2
    out[:, 1] = xyah[:, 1] - h / 2
    out[:, 2] = out[:, 0] + w
    out[:, 3] = out[:, 1] + h
    return out


def initiate(measurements):
    """measurements: K x 4 xyah -> (mean K x 8 [x y a h vx vy va vh], cov K x 3 x 4)."""
    z = np.asarray(measurements, dtype=np.float64).reshape(-1, 4)
    k = z.shape[0]
    mean = np.zeros((k, 8))
    mean[:, :4] = z
    h = z[:, 3:4]
    cov = np.zeros((k, 3, 4))
    cov[:, 0] = (2 * STD_POS * h * _H + 1e-2 * _A) ** 2
    cov[:, 2] = (10 * STD_VEL * h * _H + 1e-5 * REF_FPS * _A) ** 2
    return mean, cov


def predict(mean, cov, dt):
    """Advance every track by ``dt`` seconds, in place."""
    if mean.shape[0] == 0 or dt <= 0:
        return
    h = mean[:, 3:4].copy()
    mean[:, :4] += dt * mean[:, 4:]
    pp, pv, vv = cov[:, 0], cov[:, 1], cov[:, 2]
    frames = dt * REF_FPS
    pp += dt * (2 * pv + dt * vv) + frames * (STD_POS * h * _H + 1e-2 * _A) ** 2
    pv += dt * vv
    vv += frames * (STD_VEL * h * _H + 1e-5 * REF_FPS * _A) ** 2


def update(mean, cov, measurements):
    """Correct tracks (mean K x 8, cov K x 3 x 4) with K measurements xyah; returns new arrays."""
    z = np.asarray(measurements, dtype=np.float64).reshape(-1, 4)
    if z.shape[0] == 0:
        return mean, cov
    pp = cov[:, 0]
    s = pp + (STD_POS * mean[:, 3:4]) ** 2 * _H + 1e-2 * _A
    gain = cov[:, :2] / s[:, None, :]                    # K x 2 x 4: position and velocity gains
    y = z - mean[:, :4]
    new_mean = mean + (gain * y[:, None, :]).reshape(-1, 8)
    new_cov = cov - gain[:, (0, 0, 1), :] * cov[:, (0, 1, 1), :]
    return new_mean, new_cov

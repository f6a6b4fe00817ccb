"""Video analytics on the device: trackers, line and zone rules, events (numpy only).

Public API::

    from edgekit.analytics import make_tracker
    tracker = make_tracker("bytetrack", track_buffer_s=1.0)
    tracks = tracker.update(dets, t)      # dets N x 6 [x1, y1, x2, y2, score, class], t seconds
                                          # -> M x 7 [x1, y1, x2, y2, track_id, score, class]

``CameraAnalytics`` (edgekit.analytics.camera) runs a tracker and a camera's rules frame by frame;
``validate_config`` (edgekit.analytics.config) checks a camera's ``analytics`` YAML mapping.
"""

from edgekit.analytics.tracker import make_tracker

__all__ = ["make_tracker"]

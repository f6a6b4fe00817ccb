"""Shared test helpers. Keep additive: each engineer appends fixtures, nobody rewrites others'."""

import os

import pytest


def write_video(path, frames=30, width=320, height=240, fps=30, fourcc="mp4v", seed=0):
    """Write a real video file with OpenCV (moving shapes from the synthetic source): a camera stand-in."""
    import cv2

    from edgekit.sources.synthetic import synthetic_frame

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot write %s with %s" % (path, fourcc))
    for i in range(frames):
        writer.write(synthetic_frame(i, width, height, seed))
    writer.release()
    assert os.path.getsize(str(path)) > 0
    return str(path)


@pytest.fixture
def make_video(tmp_path):
    """make_video(name="clip.mp4", frames=30, width=320, height=240, fps=30, fourcc="mp4v") -> path."""

    def make(name="clip.mp4", **kwargs):
        return write_video(tmp_path / name, **kwargs)

    return make

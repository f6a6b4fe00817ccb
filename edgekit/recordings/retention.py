"""Retention of one camera's clip folder: ``max_days`` then ``max_gb``, the oldest clips first.

A clip is its video file (``.mp4`` or ``.avi``) and its JSON sidecar; both go together. Names start
with the camera and the clip's UTC start time, so sorting by name is sorting by age. Hidden files
(``.tmp-*``: clips being written) are not clips: ``clean_temp`` removes the ones a crash left.
"""

import os
import time

VIDEO_EXTS = (".mp4", ".avi")


def clips(folder):
    """[(name without extension, video path, bytes of video + sidecar, mtime)] oldest first."""
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    out = []
    for name in names:
        stem, ext = os.path.splitext(name)
        if name.startswith(".") or ext not in VIDEO_EXTS:
            continue
        path = os.path.join(folder, name)
        try:
            st = os.stat(path)
        except OSError:
            continue
        size = st.st_size
        sidecar = os.path.join(folder, stem + ".json")
        try:
            size += os.path.getsize(sidecar)
        except OSError:
            pass
        out.append((stem, path, size, st.st_mtime))
    return out


def remove_clip(folder, stem):
    for ext in VIDEO_EXTS + (".json",):
        try:
            os.unlink(os.path.join(folder, stem + ext))
        except OSError:
            pass


def enforce(folder, max_gb=None, max_days=None, now=None, keep=()):
    """Delete clips beyond the bounds (never those named in ``keep``); returns the removed stems."""
    now = time.time() if now is None else now
    removed = []
    items = clips(folder)
    if max_days is not None:
        horizon = now - float(max_days) * 86400.0
        for item in list(items):
            if item[3] < horizon and item[0] not in keep:
                remove_clip(folder, item[0])
                removed.append(item[0])
                items.remove(item)
    if max_gb is not None:
        budget = float(max_gb) * 1e9
        total = sum(item[2] for item in items)
        for item in list(items):
            if total <= budget:
                break
            if item[0] in keep:
                continue
            remove_clip(folder, item[0])
            removed.append(item[0])
            total -= item[2]
    return removed


def usage(folder):
    items = clips(folder)
    return {"clips": len(items), "bytes": sum(i[2] for i in items)}


def clean_temp(folder):
    """Remove ``.tmp-*`` files left by a crash (call before any clip is being written)."""
    removed = 0
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    for name in names:
        if name.startswith(".tmp-") or (name.startswith(".") and name.endswith(".tmp")):
            try:
                os.unlink(os.path.join(folder, name))
                removed += 1
            except OSError:
                pass
    return removed

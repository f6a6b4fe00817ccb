import numpy as np

from edgekit.vision.draw import annotate, color_for


def frame(h=120, w=160):
    return np.zeros((h, w, 3), dtype=np.uint8)


def det(index, box, score=0.9, label="x"):
    return {"index": index, "label": label, "score": score, "box": box}


def test_draws_box_edges_in_class_colour_and_leaves_input_untouched():
    src = frame()
    result = {"task": "detection", "detections": [det(2, [40, 50, 100, 110])]}
    out = annotate(src, result)
    assert src.sum() == 0                                   # input not modified
    assert out.shape == src.shape and out.dtype == np.uint8
    color = np.array(color_for(2), dtype=np.uint8)
    assert (out[80, 40] == color).all() and (out[80, 100] == color).all()   # left / right edges
    assert (out[110, 70] == color).all()                                     # bottom edge
    assert out[80, 70].sum() == 0                                            # interior stays empty


def test_label_is_written_near_the_box():
    out = annotate(frame(), {"task": "detection", "detections": [det(0, [60, 60, 100, 100], label="cat")]})
    above = out[35:60, 60:130]
    assert (above != 0).any()


def test_box_at_the_top_edge_and_outside_the_frame_do_not_fail():
    result = {"task": "detection", "detections": [det(1, [0, 0, 30, 30]), det(3, [-50, -50, 500, 500])]}
    out = annotate(frame(), result)
    assert out[:30, :30].any()


def test_classification_banner_and_labels_override():
    result = {"task": "classification", "top": [{"index": 1, "label": "dog", "score": 0.83}]}
    out = annotate(frame(), result, labels=["a", "a much longer label"])
    banner = out[:30, :]
    assert banner.any() and not out[60:, :].any()
    plain = annotate(frame(), result)
    assert (banner != 0).sum() > (plain[:30, :] != 0).sum()   # the longer label fills more pixels


def test_empty_or_missing_result_returns_a_clean_copy_and_caption_draws():
    assert not annotate(frame(), None).any()
    assert not annotate(frame(), {"task": "detection", "detections": []}).any()
    out = annotate(frame(), None, caption="12.5 fps")
    assert out[100:, 80:].any() and not out[:50].any()       # bottom right (see the caption test below)


def test_grey_frame_becomes_bgr():
    out = annotate(np.zeros((40, 40), np.uint8), {"task": "detection", "detections": [det(0, [5, 5, 30, 30])]})
    assert out.shape == (40, 40, 3)


def test_most_confident_label_is_drawn_on_top():
    from edgekit.vision.draw import color_for

    result = {"task": "detection", "detections": [det(0, [40, 60, 120, 110], score=0.9),
                                                  det(1, [40, 62, 120, 110], score=0.6)]}
    out = annotate(frame(), result)
    label_area = out[40:60, 42:60].reshape(-1, 3)
    colours = set(map(tuple, label_area.tolist()))
    assert tuple(color_for(0)) in colours and tuple(color_for(1)) not in colours


def test_caption_goes_bottom_right_and_leaves_the_cameras_own_stamp_alone():
    """The synthetic source (and many cameras) print a frame number or time at the bottom left;
    the page's caption must not be drawn over it."""
    img = annotate(frame(120, 320), {}, caption="#123456")
    assert not img[80:, :100].any()            # bottom left: untouched
    assert img[100:, 220:].any()               # bottom right: the caption


def test_caption_does_not_cover_the_synthetic_sources_frame_number():
    from edgekit.sources.synthetic import synthetic_frame

    raw = synthetic_frame(7, 320, 240)
    stamp = raw[200:, :80].copy()
    assert stamp.any()                                    # the source's own number is there
    img = annotate(raw, {}, caption="#7")
    assert np.array_equal(img[200:, :80], stamp)

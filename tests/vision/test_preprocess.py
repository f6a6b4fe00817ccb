import numpy as np
import pytest

from edgekit.errors import ConfigError
from edgekit.vision.preprocess import LetterboxInfo, Preprocessor


def naive(frame, size, color, mean, std):
    """Reference: the obvious slow way, per pixel in float64."""
    import cv2

    img = cv2.resize(frame, (size[1], size[0]), interpolation=cv2.INTER_LINEAR).astype(np.float64)
    if color == "RGB":
        img = img[:, :, ::-1]
    img = (img / 255.0 - np.array(mean)) / np.array(std)
    return img.transpose(2, 0, 1)[None]


@pytest.mark.parametrize("color", ["RGB", "BGR"])
def test_stretch_matches_reference(color):
    rng = np.random.RandomState(0)
    frame = rng.randint(0, 256, size=(48, 64, 3)).astype(np.uint8)
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    pre = Preprocessor((32, 40), color=color, mean=mean, std=std)
    tensor, info = pre(frame)
    assert tensor.shape == (1, 3, 32, 40) and tensor.dtype == np.float32
    np.testing.assert_allclose(tensor, naive(frame, (32, 40), color, mean, std), atol=1e-5)
    assert info.scale_x == 40 / 64 and info.scale_y == 32 / 48


def test_colour_order_really_swaps():
    frame = np.zeros((8, 8, 3), np.uint8)
    frame[:, :, 2] = 255                      # pure red in BGR
    rgb, _ = Preprocessor((8, 8), color="RGB")(frame)
    bgr, _ = Preprocessor((8, 8), color="BGR")(frame)
    assert rgb[0, 0].max() == 1.0 and rgb[0, 2].max() == 0.0
    assert bgr[0, 2].max() == 1.0 and bgr[0, 0].max() == 0.0


def test_letterbox_pads_and_maps_boxes_back():
    frame = np.full((100, 200, 3), 255, np.uint8)
    pre = Preprocessor((64, 64), color="BGR", resize="letterbox")
    tensor, info = pre(frame)
    assert (info.pad_x, info.pad_y) == (0.0, 16.0) and info.scale_x == 0.32
    # padding rows carry the pad value, image rows are white
    assert np.isclose(tensor[0, 0, 0, 0], 114 / 255.0) and np.isclose(tensor[0, 0, 32, 32], 1.0)
    # a box covering the whole image area in input pixels maps to the whole frame
    back = info.to_frame([[0, 16, 64, 48]])
    np.testing.assert_allclose(back, [[0, 0, 200, 100]], atol=1e-4)


def test_to_frame_clips():
    info = LetterboxInfo(0.5, 0.5, 0, 0, 100, 100)
    np.testing.assert_allclose(info.to_frame([[-10, -10, 80, 80]]), [[0, 0, 100, 100]])


def test_grey_and_rgba_frames_are_accepted():
    pre = Preprocessor((16, 16))
    assert pre(np.zeros((20, 20), np.uint8))[0].shape == (1, 3, 16, 16)
    assert pre(np.zeros((20, 20, 4), np.uint8))[0].shape == (1, 3, 16, 16)


def test_nhwc_and_uint8_inputs():
    frame = np.random.RandomState(1).randint(0, 256, (16, 16, 3)).astype(np.uint8)
    t, _ = Preprocessor((16, 16), color="BGR", layout="NHWC", dtype="uint8")(frame)
    assert t.shape == (1, 16, 16, 3) and t.dtype == np.uint8
    np.testing.assert_array_equal(t[0], frame)


def test_bad_options():
    with pytest.raises(ConfigError):
        Preprocessor((16, 16), resize="crop")
    with pytest.raises(ConfigError):
        Preprocessor((16, 16), color="HSV")
    with pytest.raises(ConfigError):
        Preprocessor((16, 16))(None)


def test_batch():
    frames = [np.zeros((10, 10, 3), np.uint8), np.ones((20, 30, 3), np.uint8)]
    tensor, infos = Preprocessor((8, 8)).batch(frames)
    assert tensor.shape == (2, 3, 8, 8) and len(infos) == 2


@pytest.mark.parametrize("layout, dtype", [("NCHW", "float16"), ("NHWC", "float32")])
def test_every_layout_and_dtype_matches_the_reference(layout, dtype):
    rng = np.random.RandomState(3)
    frame = rng.randint(0, 256, size=(30, 40, 3)).astype(np.uint8)
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    tensor, _ = Preprocessor((24, 24), color="RGB", mean=mean, std=std, layout=layout, dtype=dtype)(frame)
    ref = naive(frame, (24, 24), "RGB", mean, std)
    if layout == "NHWC":
        ref = ref.transpose(0, 2, 3, 1)
    assert tensor.dtype == np.dtype(dtype) and tensor.shape == ref.shape
    np.testing.assert_allclose(tensor.astype(np.float64), ref, atol=2e-3 if dtype == "float16" else 1e-5)

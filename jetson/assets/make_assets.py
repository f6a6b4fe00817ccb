"""Regenerate the tiny ONNX models the on-device self-test builds engines from (desktop side: needs onnx).

The board never runs this (no onnx, no torch there): the .onnx files are committed beside it.
    .venv/bin/python jetson/assets/make_assets.py
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests"))
sys.path.insert(0, os.path.join(HERE, "..", ".."))

from standins.models import tiny_classifier  # noqa: E402


def main():
    # opset 11: inside TensorRT 8.2's range and OpenCV 4.1.1's ONNX importer
    tiny_classifier(os.path.join(HERE, "tiny.onnx"), opset=11, size=32)
    tiny_classifier(os.path.join(HERE, "tiny_dynamic.onnx"), opset=11, size=32, dynamic_batch=True)


if __name__ == "__main__":
    main()

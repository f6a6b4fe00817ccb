"""edgekit: small vision models from a desktop to a camera on a Jetson Nano.

Everything outside ``edgekit.desktop`` is device side: it runs on Python 3.6 (JetPack 4.6)
and never imports torch or onnx.
"""

__version__ = "0.1.0"

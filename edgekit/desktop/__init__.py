"""Desktop side (Python >= 3.10): train, export, quantize, bundle making. May import torch and onnx."""

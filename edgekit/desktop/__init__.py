"""The desktop side (Python >= 3.10): data, training, export, lint, quantization, bundle making, demo.

Only this package may import torch, torchvision, onnx, onnxslim, onnxruntime.quantization and
matplotlib. Nothing on the device side imports it.
"""

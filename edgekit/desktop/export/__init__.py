"""Export to self-describing ONNX: model sources (loaders), ``edgekit export`` itself (run), the TensorRT
lint and its operator tables (lint, trt_ops/), per-layer costs (graph), PyTorch-vs-ONNX parity (parity) and
``edgekit inspect`` (inspect)."""

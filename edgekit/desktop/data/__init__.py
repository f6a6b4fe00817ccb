"""Datasets on the desktop: image folders and YOLO sets (datasets), the synthetic shapes set (shapes),
training-time augmentation (augment)."""

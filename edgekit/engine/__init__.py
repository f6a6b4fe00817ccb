"""TensorRT engines: build and cache on the device, and the calibration-cache text format."""

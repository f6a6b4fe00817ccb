"""FP16 and INT8 quantization: ``edgekit quantize`` itself (run), the two precision paths (fp16, int8),
calibration images (calibration), evaluation on images (evaluate), per-layer sensitivity (sensitivity) and
the report (report)."""

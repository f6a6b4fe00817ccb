"""The latency profiler (device side, Python 3.6): model runs and sweeps (``run``), the daemon's
pipeline per stage (``pipeline``), per-layer times (``layers``), telemetry (``telemetry``),
statistics (``stats``), reports (``report``), comparisons (``compare``) and the calibrated
latency estimate (``estimate``). Method: docs/design/measurement.md."""

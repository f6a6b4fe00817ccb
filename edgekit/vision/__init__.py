"""Pre- and post-processing shared by training, calibration, evaluation, profiler and daemon."""

"""Training: recipes (recipe), architectures and checkpoints (models, detector), per-task heads, losses and
metrics (tasks), DistributedDataParallel (ddp), and the training loop ``edgekit train`` runs (run)."""

"""Training: the step and loop, starting and resuming runs, optimizers, recovery, progress, processes."""

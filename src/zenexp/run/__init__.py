"""One run: the task, training, checkpoints, the run directory, and resuming, repeating or evaluating it."""

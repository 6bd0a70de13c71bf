"""Experiments over the tools: train then test in subprocesses (:mod:`.runner`),
the accuracy study over configs and seeds, the demo, and their tables."""
from .runner import Run, RunResult, run_all, train_and_test

__all__ = ['Run', 'RunResult', 'run_all', 'train_and_test']

"""Cost of the shape stream against the baseline (``tools/benchmark.py``):
parameters, FLOPs, training step time and peak memory, inference latency,
in fp32 and with AMP. See docs/benchmarks.md.

Modules, one concept each:

- :mod:`.options`: the run's options, checked (:class:`BenchmarkOptions`).
- :mod:`.groups`: built-in model groups, columns and their variants.
- :mod:`.benchmark_config`: a config prepared for a download-free,
  single-process run, and the model built from it.
- :mod:`.precision`: fp32 / AMP optimizer wrappers and autocast.
- :mod:`.inputs`: synthetic training and inference batches.
- :mod:`.measurement`: parameters, FLOPs, timed training and inference.
- :mod:`.sync_check`: mmgscnn's code under CUDA's sync-debug mode.
- :mod:`.cpu_workers`: CPU training measurements in fresh processes.
- :mod:`.results`: ratios against the baseline, targets.
- :mod:`.environment`: device and library versions of the run.
- :mod:`.report`: the Markdown tables.
- :mod:`.run`: the whole run (:func:`run_benchmark`).

This file imports nothing: ``python -m mmgscnn.benchmark.cpu_workers``
(the CPU fork server) must find its module unimported.
"""

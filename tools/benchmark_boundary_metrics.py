"""Seconds per 1024x2048 image of BoundaryFScore and BoundaryIoUMetric
(see mmgscnn/evaluation/benchmark_boundary.py)."""
from mmgscnn.evaluation.benchmark_boundary import main

if __name__ == '__main__':
    main()

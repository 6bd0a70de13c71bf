"""Helpers shared by the metrics."""
from numbers import Real
from typing import Sequence, Tuple, Union


def pixel_values(values: Union[Real, Sequence[Real]], name: str,
                 example: str) -> Tuple[Real, ...]:
    """Validate a config list of distances in pixels (numbers >= 0, distinct,
    at least one); a single number is accepted. ``name`` (e.g.
    ``'BoundaryFScore.tolerances'``) and ``example`` go into the error."""
    if isinstance(values, Real):
        values = (values, )
    values = tuple(values)
    if not values:
        raise ValueError(f'{name} is empty; give distances in pixels, e.g. {example}')
    for v in values:
        if not isinstance(v, Real) or isinstance(v, bool) or v < 0:
            raise ValueError(f'{name} must be numbers >= 0 (pixels), got {v!r} in {values}')
    if len(set(values)) != len(values):
        raise ValueError(f'{name} has repeated values: {values}')
    return values


class RefusesOutOfRangeLabels:
    """Metric mixin: ground-truth labels outside ``0..num_classes-1`` that are
    not ``self.ignore_index`` stop the evaluation instead of being counted.

    ``process`` calls :meth:`count_out_of_range` per sample (a count kept on
    the device, no synchronisation); ``evaluate`` reads the counts once, on
    every rank, and raises :class:`~mmgscnn.datasets.label_check.SegInputError`
    naming the label files."""

    def count_out_of_range(self, gt, num_classes: int, sample: dict) -> None:
        bad = ((gt != self.ignore_index) & ((gt < 0) | (gt >= num_classes))).sum()
        self.__dict__.setdefault('_out_of_range', []).append(
            (bad, sample.get('seg_map_path') or sample.get('img_path') or '<image>',
             num_classes))

    def evaluate(self, size: int) -> dict:
        pending = self.__dict__.pop('_out_of_range', [])
        if pending:
            import torch

            from mmgscnn.datasets.label_check import CHECK_HINT, SegInputError
            counts = torch.stack([c.reshape(()) for c, _, _ in pending]).cpu().tolist()
            bad = [(path, n) for (_, path, _), n in zip(pending, counts) if n]
            if bad:
                self.results.clear()
                k = pending[0][2]
                shown = ', '.join(f'{path} ({n} px)' for path, n in bad[:3])
                raise SegInputError(
                    f'{type(self).__name__}: {len(bad)} ground-truth label map(s) have '
                    f'values outside the {k} classes (0..{k - 1}) that are not '
                    f'ignore_index {self.ignore_index}, e.g. {shown}; they are not '
                    f'scored; fix them ({CHECK_HINT})')
        return super().evaluate(size)

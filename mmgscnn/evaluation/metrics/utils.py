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

"""One way to seed training: torch's generator from the run's ``seed``, nothing global in NumPy.

Weight initialisation and dropout draw from torch's default generator, so a training run seeds it with
:func:`seed_torch`; batch orders and window draws come from their own generators
(``torch.Generator().manual_seed(seed)``, ``np.random.default_rng(seed)``). NumPy's global state is never
touched: a notebook's own ``np.random`` calls are not reset by a model fit.

>>> import numpy as np
>>> np.random.seed(7); before = np.random.random()
>>> np.random.seed(7); torch = seed_torch(0); after = np.random.random()
>>> before == after
True
"""

from __future__ import annotations

from types import ModuleType

__all__ = ["seed_torch"]


def seed_torch(seed: int) -> ModuleType:
    """Seed torch's default generator with ``seed``; returns the ``torch`` module (imported here, lazily)."""
    import torch

    torch.manual_seed(int(seed))
    return torch

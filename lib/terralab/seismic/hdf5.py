"""HDF5 helpers shared by the CEED and SeisBench readers: h5py imported on first use, attributes as plain
values."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

__all__ = ["h5py_module", "plain_value"]


def h5py_module() -> ModuleType:
    """The ``h5py`` module, imported on first use so ``import terralab.seismic.io`` stays light."""
    import h5py

    return h5py


def plain_value(value: Any) -> Any:
    """HDF5 attribute → plain Python value (bytes → str, 0-d arrays → scalars, arrays → lists).

    Examples
    --------
    >>> plain_value(b"NC"), plain_value(np.array(2.5)), plain_value(np.array([1, 2]))
    ('NC', 2.5, [1, 2])
    """
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return plain_value(value.item())
        return [plain_value(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value

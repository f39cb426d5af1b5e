"""Numbers for the prose: ``glue`` as the chapters use it.

A chapter never types a number that a cell computes; it glues it (myst-nb's ``glue``) and
the prose shows it with ``{glue:text}`name:.2f```. myst-nb formats a glued number from its
``text/plain`` representation, which for a numpy scalar is ``np.float64(0.2)`` and cannot be
formatted. :func:`glue` stores numbers as plain Python numbers, so every format spec works.
"""

from __future__ import annotations

import cmath

import numpy as np

__all__ = ["glue", "plain"]


def plain(value):
    """A numpy scalar or 0-d array as the Python number it holds; anything else unchanged.

    A number must be finite: a NaN or ±∞ glued into the prose is a bug upstream, so it is
    refused (``ValueError`` naming ``value``) rather than printed.
    """
    if (
        isinstance(value, (np.generic, np.ndarray))
        or hasattr(value, "__jax_array__")
        or (type(value).__module__.startswith(("jax", "jaxlib")))
    ):
        arr = np.asarray(value)
        if arr.ndim != 0:
            raise ValueError(f"value must be a scalar to glue as a number, got shape {arr.shape}")
        value = arr.item()
    if isinstance(value, (float, complex)) and not cmath.isfinite(value):
        raise ValueError(f"value must be a finite number to glue into the text, got {value!r}")
    return value


def glue(name: str, value, display: bool = False) -> None:
    """myst-nb's ``glue(name, value, display)`` with numbers stored as Python numbers."""
    from myst_nb import glue as _glue

    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    _glue(name, plain(value), display=display)

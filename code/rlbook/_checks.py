"""Input validation shared by every public function of rlbook.

Each check raises ``ValueError`` naming the argument before any computation.
Values that are JAX tracers (inside ``jit``, ``grad`` or ``vmap``) cannot be
inspected, so only their shapes are checked; concrete arrays are checked in
full.
"""

from __future__ import annotations

import jax
import numpy as np


def is_concrete(x) -> bool:
    """True when ``x`` holds values we can read (not a tracer)."""
    return not isinstance(x, jax.core.Tracer)


def discount(name: str, gamma, *, allow_one: bool = False) -> None:
    """γ must lie in [0, 1) (or [0, 1] when ``allow_one``)."""
    if not is_concrete(gamma):
        return
    g = np.asarray(gamma)
    if g.shape != ():
        raise ValueError(f"{name} must be a scalar, got shape {g.shape}")
    upper_ok = g <= 1.0 if allow_one else g < 1.0
    if not (np.isfinite(g) and g >= 0.0 and upper_ok):
        interval = "[0, 1]" if allow_one else "[0, 1)"
        raise ValueError(f"{name} must lie in {interval}, got {float(g)}")


def positive(name: str, x, *, strict: bool = True) -> None:
    """Every entry of ``x`` is > 0 (or ≥ 0 when not ``strict``) and finite."""
    if not is_concrete(x):
        return
    a = np.asarray(x)
    bad = ~np.isfinite(a) | ((a <= 0) if strict else (a < 0))
    if np.any(bad):
        sign = "> 0" if strict else ">= 0"
        raise ValueError(f"{name} must be finite and {sign}, got {a[bad].ravel()[:3]}")


def positive_int(name: str, n) -> None:
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n <= 0:
        raise ValueError(f"{name} must be a positive integer, got {n!r}")


def one_of(name: str, value, options) -> None:
    """``value`` is one of ``options`` (a tuple)."""
    if value not in options:
        raise ValueError(f"{name} must be one of {tuple(options)}, got {value!r}")


def flag(name: str, value) -> None:
    """``value`` is a bool (not merely truthy)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be a bool, got {value!r}")


def widths(name: str, hidden) -> None:
    """``hidden`` is a tuple of positive ints: the hidden-layer widths of a network."""
    if not isinstance(hidden, tuple) or not all(
            isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n > 0
            for n in hidden):
        raise ValueError(f"{name} must be a tuple of positive ints, got {hidden!r}")


def ndim(name: str, x, expected: int) -> None:
    if np.ndim(x) != expected:
        raise ValueError(f"{name} must have {expected} dimensions, got shape {np.shape(x)}")


def probabilities(name: str, p, *, axis: int = -1, atol: float = 1e-6) -> None:
    """Entries of ``p`` are non-negative and sum to 1 along ``axis``."""
    if not is_concrete(p):
        return
    a = np.asarray(p, dtype=np.float64)
    if np.any(~np.isfinite(a)) or np.any(a < -atol):
        raise ValueError(f"{name} has negative or non-finite probabilities")
    sums = a.sum(axis=axis)
    if not np.allclose(sums, 1.0, atol=atol * max(1, a.shape[axis])):
        worst = float(np.max(np.abs(sums - 1.0)))
        raise ValueError(f"{name} must sum to 1 along axis {axis} (largest deviation {worst:.3g})")

"""One build seed for the whole book: every key and numpy generator derives from it.

A chapter never writes ``jax.random.PRNGKey(3)``; it writes ``seeds.key(3)``, which is
the build seed's key with ``3`` folded in. The build seed is read from the environment
variable ``RLBOOK_SEED`` (default 0), so ``RLBOOK_SEED=7 make book`` executes the whole
book on another random stream, and every check of the book must hold on it.

``key(n)`` and ``rng(n)`` are independent streams for different ``n`` and for different
build seeds (``fold_in`` for JAX keys, a ``SeedSequence`` of ``(n, seed)`` for numpy).

Training over seeds uses :func:`train_keys`: ``count`` keys for one run of a learning
claim, or, when the book is calibrated (``RLBOOK_SEED_SETS=k``, see
:mod:`rlbook.claims`), ``k * count`` keys, ``k`` independent seed sets in one vmapped
batch. The first ``count`` keys are the same either way, so the calibration's first set
is the build's.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["ENV", "SETS_ENV", "build_seed", "key", "keys", "rng", "seed_sets", "train_keys"]

ENV = "RLBOOK_SEED"
"""The environment variable holding the build seed (default 0)."""
SETS_ENV = "RLBOOK_SEED_SETS"
"""The environment variable holding the number of seed sets :func:`train_keys` lays out
(default 1; ``make calibrate`` sets 20)."""


def _env_int(name: str, default: int, minimum: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum or value >= 2**31:
        raise ValueError(f"{name} must be in [{minimum}, 2**31), got {value}")
    return value


def build_seed() -> int:
    """The build seed: ``RLBOOK_SEED`` as a non-negative integer (default 0)."""
    return _env_int(ENV, 0, 0)


def seed_sets() -> int:
    """How many independent seed sets a training run draws: ``RLBOOK_SEED_SETS`` (default 1)."""
    return _env_int(SETS_ENV, 1, 1)


def _index(n, name: str = "n") -> int:
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
        raise ValueError(f"{name} must be a non-negative integer, got {n!r}")
    if n < 0 or n >= 2**31:
        raise ValueError(f"{name} must be in [0, 2**31), got {n}")
    return int(n)


def key(n: int = 0) -> jax.Array:
    """The JAX key of stream ``n`` under the build seed (a ``PRNGKey`` with ``n`` folded in)."""
    n = _index(n)
    return jax.random.fold_in(jax.random.PRNGKey(build_seed()), n)


def keys(n: int, count: int) -> jax.Array:
    """``count`` independent keys of stream ``n`` (``jax.random.split(key(n), count)``)."""
    count = _index(count, "count")
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    return jax.random.split(key(n), count)


def rng(n: int = 0) -> np.random.Generator:
    """The numpy generator of stream ``n`` under the build seed."""
    n = _index(n)
    return np.random.default_rng([n, build_seed()])


def train_keys(n: int, count: int) -> jax.Array:
    """Keys of the seeds a learning claim trains on: ``[seed_sets() * count]``.

    Key ``i`` is ``fold_in(key(n), i)``, so the first ``count`` keys (the build's seed
    set) do not depend on how many sets are drawn.
    """
    count = _index(count, "count")
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    base = key(n)
    return jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.arange(seed_sets() * count))

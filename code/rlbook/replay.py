"""A replay buffer as a fixed-size pytree, carried through a ``lax.scan``.

The buffer holds any pytree of per-transition arrays (for example
``{"obs", "action", "reward", "next_obs", "terminated"}``) in a ring of
``capacity`` slots, with a write pointer and a fill count. ``add`` and
``sample`` are pure, so a whole off-policy training run is one jitted scan
(DQN in the Q-learning chapter, DDPG, TD3 and SAC after it).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rlbook import _checks

__all__ = ["Buffer", "init", "add", "add_batch", "sample"]


class Buffer(NamedTuple):
    data: Any  # pytree, each leaf of shape [capacity, ...]
    pointer: jax.Array  # next slot to write
    size: jax.Array  # number of filled slots, at most capacity

    @property
    def capacity(self) -> int:
        return jax.tree_util.tree_leaves(self.data)[0].shape[0]


def _check_buffer(buffer) -> None:
    if not isinstance(buffer, Buffer):
        raise ValueError(
            f"buffer must be a replay.Buffer (replay.init), got {type(buffer).__name__}"
        )


def _check_fits(buffer: Buffer, name: str, tree, *, batched: bool = False) -> None:
    """``tree`` has the pytree structure of the buffer's slots, and each leaf a slot's shape
    (after a leading batch axis when ``batched``): a write never broadcasts or fails in XLA."""
    want = jax.tree_util.tree_structure(buffer.data)
    have = jax.tree_util.tree_structure(tree)
    if have != want:
        raise ValueError(f"{name} must have the structure of the buffer's slots {want}, got {have}")
    for d, x in zip(
        jax.tree_util.tree_leaves(buffer.data), jax.tree_util.tree_leaves(tree), strict=True
    ):
        shape = np.shape(x)[1:] if batched else np.shape(x)
        if (batched and np.ndim(x) == 0) or shape != np.shape(d)[1:]:
            what = "[batch] + " if batched else ""
            raise ValueError(
                f"{name} leaves must have shape {what}{np.shape(d)[1:]} (the "
                f"buffer's slot), got {np.shape(x)}"
            )


def init(capacity: int, example: Any) -> Buffer:
    """An empty buffer whose slots have the shapes and dtypes of ``example``."""
    _checks.positive_int("capacity", capacity)
    _checks.finite_tree("example", example)
    data = jax.tree_util.tree_map(
        lambda x: jnp.zeros((capacity,) + jnp.shape(x), jnp.asarray(x).dtype), example
    )
    return Buffer(data, jnp.asarray(0, jnp.int32), jnp.asarray(0, jnp.int32))


def add(buffer: Buffer, transition: Any) -> Buffer:
    """Write one transition at the pointer, overwriting the oldest when full."""
    _check_buffer(buffer)
    _check_fits(buffer, "transition", transition)
    _checks.finite_tree("transition", transition)
    cap = buffer.capacity
    data = jax.tree_util.tree_map(lambda d, x: d.at[buffer.pointer].set(x), buffer.data, transition)
    return Buffer(data, (buffer.pointer + 1) % cap, jnp.minimum(buffer.size + 1, cap))


def add_batch(buffer: Buffer, transitions: Any) -> Buffer:
    """Write a batch of transitions (leading axis) in order."""
    _check_buffer(buffer)
    _check_fits(buffer, "transitions", transitions, batched=True)
    leaves = _checks.finite_tree("transitions", transitions)
    sizes = {jnp.shape(x)[0] if jnp.ndim(x) else None for x in leaves}
    if len(sizes) != 1 or None in sizes:
        raise ValueError(
            f"transitions must have one leading (batch) axis of the same size in "
            f"every leaf, got shapes {[jnp.shape(x) for x in leaves]}"
        )
    n = jax.tree_util.tree_leaves(transitions)[0].shape[0]
    cap = buffer.capacity
    idx = (buffer.pointer + jnp.arange(n)) % cap
    data = jax.tree_util.tree_map(lambda d, x: d.at[idx].set(x), buffer.data, transitions)
    return Buffer(data, (buffer.pointer + n) % cap, jnp.minimum(buffer.size + n, cap))


def sample(key: jax.Array, buffer: Buffer, batch_size: int) -> Any:
    """``batch_size`` transitions drawn uniformly with replacement from the filled slots.

    A concrete empty buffer raises ``ValueError``; under ``jit`` (a traced fill count)
    it cannot, and an empty buffer returns NaN in every floating leaf (integer and
    bool leaves hold slot 0's zeros): the agents never sample before
    ``learning_starts >= batch_size`` transitions are stored.
    """
    _checks.positive_int("batch_size", batch_size)
    _check_buffer(buffer)
    if _checks.is_concrete(buffer.size) and int(buffer.size) <= 0:
        raise ValueError("buffer must hold at least one transition before sampling")
    idx = jax.random.randint(key, (batch_size,), 0, jnp.maximum(buffer.size, 1))
    return _checks.nan_unless(
        buffer.size > 0, jax.tree_util.tree_map(lambda d: d[idx], buffer.data)
    )

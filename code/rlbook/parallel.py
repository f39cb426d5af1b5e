r"""Training runs over seeds, and over a hyperparameter grid, on every device JAX has.

Every agent's ``train(key, ...)`` is a pure function of its key, so running it on many
seeds is ``jax.jit(jax.vmap(train))(keys)``: one compile for all of them. With several
devices (GPUs, or CPU devices forced with
``XLA_FLAGS=--xla_force_host_platform_device_count=N``) the same program is split by
JAX itself: the keys are laid out along a one-axis :class:`jax.sharding.Mesh` with
:class:`jax.sharding.NamedSharding`, and XLA partitions the vmapped program so that
each device runs its share of the seeds. Nothing here schedules work by hand.

* :func:`run_seeds` — ``out[i] = train(keys[i], *args)``;
* :func:`run_grid` — ``out[j, i] = train(keys[i], values[j])``, a hyperparameter
  (a traced argument of ``train``: GAE's λ, PPO's ε, TRPO's δ, the NTK trainer's α)
  crossed with the seeds.

With one device both are exactly the plain ``jit(vmap(...))`` the chapters write, so
their numbers do not depend on whether the helper is used. With ``D`` devices the keys
are padded to a multiple of ``D`` (the padded runs are computed and dropped) and the
outputs sliced back. A sharded program is compiled differently from the unsharded
one, so its results agree with plain vmap to float32 rounding, not bit for bit.

The off-policy agents and SVG draw from Philox keys by default, which the locked JAX
cannot partition (see :func:`rlbook.agents.offpolicy.philox_key`); give their configs
``rng_impl="threefry2x32"`` to shard them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from rlbook import _checks

__all__ = ["AXIS", "n_devices", "mesh", "pad_to", "run_seeds", "run_grid"]

AXIS = "seeds"
"""Name of the one mesh axis the seeds are laid out on (:func:`mesh`)."""


def _devices(devices) -> tuple:
    if devices is None:
        return tuple(jax.devices())
    try:
        devices = tuple(devices)
    except TypeError:
        raise ValueError(f"devices must be a sequence of jax devices, got {devices!r}") from None
    if not devices or not all(isinstance(d, jax.Device) for d in devices):
        raise ValueError(f"devices must be a non-empty sequence of jax devices, got {devices!r}")
    if len(set(devices)) != len(devices):
        raise ValueError(f"devices must not repeat a device, got {devices!r}")
    return devices


def n_devices(devices: Sequence[jax.Device] | None = None) -> int:
    """How many devices :func:`run_seeds` splits the seeds over (default: all of
    ``jax.devices()``)."""
    return len(_devices(devices))


def mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """The one-axis mesh (axis :data:`AXIS`) the seeds are laid out on."""
    return Mesh(np.array(_devices(devices)), (AXIS,))


def pad_to(n: int, multiple: int) -> int:
    """The smallest multiple of ``multiple`` that is at least ``n``."""
    for name, v in (("n", n), ("multiple", multiple)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    return -(-n // multiple) * multiple


def _check_keys(keys) -> jax.Array:
    if not isinstance(keys, jax.Array):
        raise ValueError(f"keys must be a jax array of keys, got {type(keys).__name__}")
    if jax.dtypes.issubdtype(keys.dtype, jax.dtypes.prng_key):
        if keys.ndim != 1:
            raise ValueError(f"keys must be a 1-D array of typed keys, got shape {keys.shape}")
    elif keys.dtype != jnp.uint32 or keys.ndim != 2:
        raise ValueError(
            "keys must be a batch of keys (typed keys of shape [n], or raw "
            f"uint32 keys of shape [n, k]), got {keys.dtype}{list(keys.shape)}"
        )
    if keys.shape[0] < 1:
        raise ValueError("keys must hold at least one key, got none")
    return keys


def _pad(x: jax.Array, size: int) -> jax.Array:
    """``x`` with its last row repeated until it has ``size`` rows."""
    if x.shape[0] == size:
        return x
    return jnp.concatenate([x, jnp.repeat(x[-1:], size - x.shape[0], axis=0)])


@functools.lru_cache(maxsize=64)
def _compiled(train: Callable, n_args: int, grid: bool, devices: tuple) -> Callable:
    """The jitted, vmapped ``train`` (cached, so a second call with new keys does not recompile)."""
    if grid:
        f = jax.vmap(jax.vmap(train, (0, None)), (None, 0))
    else:
        f = jax.vmap(train, (0,) + (None,) * n_args)
    if len(devices) == 1:
        return jax.jit(f)
    m = mesh(devices)
    seeds, replicated = NamedSharding(m, PartitionSpec(AXIS)), NamedSharding(m, PartitionSpec())
    return jax.jit(f, in_shardings=(seeds,) + (replicated,) * n_args)


def run_seeds(train: Callable, keys: jax.Array, *args, devices: Sequence[jax.Device] | None = None):
    """``train(keys[i], *args)`` for every key, one compile, the keys split over ``devices``.

    ``train`` is an agent's train function (``make_train(config)``); ``args`` are passed to
    every run unbatched (replicated across devices), e.g. a traced hyperparameter.
    Returns ``train``'s output with a leading axis of ``len(keys)``. With one device
    (default: all of ``jax.devices()``) this is ``jax.jit(jax.vmap(train, (0, None, …)))``
    exactly; with ``D`` devices the keys are padded to a multiple of ``D``, sharded along
    :data:`AXIS`, and the outputs sliced back to ``len(keys)`` rows.
    """
    return _run(train, keys, args, False, devices)


def run_grid(train: Callable, keys: jax.Array, values, devices: Sequence[jax.Device] | None = None):
    """``train(keys[i], values[j])`` for every hyperparameter value and key: outputs [J, n, ...].

    ``values`` is an array (or a pytree of arrays) with a leading axis of ``J`` settings of
    ``train``'s second argument. Every setting runs on the same keys, so settings are
    compared on common random numbers. With one device this is
    ``jax.jit(jax.vmap(jax.vmap(train, (0, None)), (None, 0)))`` exactly; with several the
    seeds are split across devices as in :func:`run_seeds` and every device runs all
    ``J`` settings of its seeds.
    """
    leaves = jax.tree_util.tree_leaves(values)
    if not leaves or any(jnp.ndim(v) < 1 for v in leaves):
        raise ValueError(
            "values must be an array (or pytree of arrays) with a leading axis "
            f"of settings, got {values!r}"
        )
    sizes = {jnp.shape(v)[0] for v in leaves}
    if len(sizes) != 1 or 0 in sizes:
        raise ValueError(f"values must have one non-zero leading size, got {sorted(sizes)}")
    for v in leaves:
        _checks.real("values", v)
        _checks.finite("values", v)
    return _run(train, keys, (values,), True, devices)


def _run(train, keys, args: tuple, grid: bool, devices):
    """The one compiled program of :func:`run_seeds` (``grid=False``) or :func:`run_grid`:
    keys padded to a multiple of the device count, the seed axis of the outputs sliced back."""
    if not callable(train):
        raise ValueError(f"train must be callable, got {train!r}")
    keys = _check_keys(keys)
    devices = _devices(devices)
    f = _compiled(train, len(args), grid, devices)
    if len(devices) == 1:
        return f(keys, *args)
    n = keys.shape[0]
    out = f(_pad(keys, pad_to(n, len(devices))), *args)
    return jax.tree_util.tree_map(lambda x: x[:, :n] if grid else x[:n], out)

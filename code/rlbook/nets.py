"""Multilayer perceptrons in plain JAX: parameters are a list of ``{"w", "b"}`` dicts.

Small enough to read in full, which is the point: the chapters' agents and
critics are these functions, and ``jax.grad`` of them is the whole backward pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

from rlbook import _checks

__all__ = ["mlp_init", "mlp_apply", "n_params"]

Params = list[dict[str, jax.Array]]


def mlp_init(key: jax.Array, sizes: Sequence[int], *, final_scale: float = 1.0,
             dtype=jnp.float32) -> Params:
    """Weights for layers ``sizes[0] → sizes[1] → … → sizes[-1]``.

    Hidden layers use LeCun-normal weights (variance 1 / fan-in) and zero biases;
    the last layer's weights are multiplied by ``final_scale`` (a small value
    such as 0.01 starts a policy near uniform, Andrychowicz et al. 2021).
    """
    if len(sizes) < 2:
        raise ValueError(f"sizes must name at least an input and an output size, got {sizes!r}")
    for i, n in enumerate(sizes):
        _checks.positive_int(f"sizes[{i}]", n)
    _checks.positive("final_scale", final_scale, strict=False)
    keys = jax.random.split(key, len(sizes) - 1)
    params = []
    for i, (k, n_in, n_out) in enumerate(zip(keys, sizes[:-1], sizes[1:])):
        w = jax.random.normal(k, (n_in, n_out), dtype) / jnp.sqrt(n_in).astype(dtype)
        if i == len(sizes) - 2:
            w = w * final_scale
        params.append({"w": w, "b": jnp.zeros((n_out,), dtype)})
    return params


def mlp_apply(params: Params, x: jax.Array, *, activation: Callable = jnp.tanh,
              final_activation: Callable | None = None) -> jax.Array:
    """y = W_L σ(… σ(W_1 x + b_1) …) + b_L for x of shape [..., sizes[0]]."""
    for layer in params[:-1]:
        x = activation(x @ layer["w"] + layer["b"])
    x = x @ params[-1]["w"] + params[-1]["b"]
    return x if final_activation is None else final_activation(x)


def n_params(params) -> int:
    """Number of scalars in a pytree of parameters."""
    return sum(int(p.size) for p in jax.tree_util.tree_leaves(params))

"""Multilayer perceptrons in plain JAX: parameters are a list of ``{"w", "b"}`` dicts.

Small enough to read in full, which is the point: the chapters' agents and
critics are these functions, and ``jax.grad`` of them is the whole backward pass.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from rlbook import _checks

__all__ = ["mlp_init", "mlp_apply", "n_params"]

Params = list[dict[str, jax.Array]]


def mlp_init(
    key: jax.Array, sizes: Sequence[int], *, final_scale: float = 1.0, dtype=jnp.float32
) -> Params:
    """Weights for layers ``sizes[0] → sizes[1] → … → sizes[-1]``.

    Hidden layers use LeCun-normal weights (variance 1 / fan-in) and zero biases;
    the last layer's weights are multiplied by ``final_scale`` (a small value
    such as 0.01 starts a policy near uniform, Andrychowicz et al. 2021).
    """
    if sizes is None or isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__len__"):
        raise ValueError(f"sizes must be a sequence of positive ints, got {sizes!r}")
    if len(sizes) < 2:
        raise ValueError(f"sizes must name at least an input and an output size, got {sizes!r}")
    for i, n in enumerate(sizes):
        _checks.positive_int(f"sizes[{i}]", n)
    _checks.positive("final_scale", final_scale, strict=False)
    keys = jax.random.split(key, len(sizes) - 1)
    params = []
    for i, (k, n_in, n_out) in enumerate(zip(keys, sizes[:-1], sizes[1:], strict=True)):
        w = jax.random.normal(k, (n_in, n_out), dtype) / jnp.sqrt(n_in).astype(dtype)
        if i == len(sizes) - 2:
            w = w * final_scale
        params.append({"w": w, "b": jnp.zeros((n_out,), dtype)})
    return params


def mlp_apply(
    params: Params,
    x: jax.Array,
    *,
    activation: Callable = jnp.tanh,
    final_activation: Callable | None = None,
    input_name: str = "x",
) -> jax.Array:
    """y = W_L σ(… σ(W_1 x + b_1) …) + b_L for x of shape [..., sizes[0]].

    ``input_name`` is what an error about ``x`` calls it (a caller's ``obs``, say).
    """
    if not isinstance(input_name, str) or not input_name:
        raise ValueError(f"input_name must be a non-empty string, got {input_name!r}")
    _check_apply(params, x, input_name)
    if not callable(activation):
        raise ValueError(f"activation must be callable, got {activation!r}")
    if final_activation is not None and not callable(final_activation):
        raise ValueError(f"final_activation must be callable or None, got {final_activation!r}")
    return _apply(params, x, activation, final_activation)


def _check_apply(params, x, x_name: str) -> None:
    """``params`` a non-empty list of ``{"w", "b"}`` layers, ``x`` finite (when concrete) with
    last axis the first layer's fan-in. The values of ``params`` are not read: a diverged
    network (the TD-divergence chapter) is still evaluated."""
    if not isinstance(params, (list, tuple)) or not params:
        raise ValueError(
            f"params must be a non-empty list of {{'w', 'b'}} layers "
            f"(nets.mlp_init), got {type(params).__name__}"
        )
    for i, layer in enumerate(params):
        if not (isinstance(layer, Mapping) and "w" in layer and "b" in layer):
            raise ValueError(
                f"params[{i}] must be a dict with keys 'w' and 'b', got {type(layer).__name__}"
            )
    _checks.finite(x_name, x)
    w_shape = np.shape(params[0]["w"])
    fan_in = w_shape[-2] if len(w_shape) >= 2 else None
    if np.ndim(x) < 1 or (fan_in is not None and np.shape(x)[-1] != fan_in):
        raise ValueError(
            f"{x_name} must have shape [..., {fan_in}] (the first layer's input "
            f"size), got shape {np.shape(x)}"
        )


def _apply(params: Params, x, activation, final_activation):
    for layer in params[:-1]:
        x = activation(x @ layer["w"] + layer["b"])
    x = x @ params[-1]["w"] + params[-1]["b"]
    return x if final_activation is None else final_activation(x)


def n_params(params) -> int:
    """Number of scalars in a pytree of parameters."""
    if params is None or isinstance(params, (str, bytes)):
        raise ValueError(f"params must be a pytree of arrays, got {params!r}")
    for p in jax.tree_util.tree_leaves(params):
        if not hasattr(p, "size") or isinstance(p, (str, bytes)):
            raise ValueError(f"params must be a pytree of arrays, got a leaf {p!r}")
    return sum(int(p.size) for p in jax.tree_util.tree_leaves(params))

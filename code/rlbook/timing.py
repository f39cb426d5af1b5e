"""Timing a computation: XLA's compile apart from the run.

On this book's CPUs, compiling a training loop often costs more than running it, so the
chapters report the two apart. :func:`compile_and_run` compiles ``jax.jit(f)`` for the
given arguments ahead of time (``f.lower(*args).compile()``), then runs the compiled
program once and waits for its result; :func:`best_time` is the fastest of a few runs of
a function after one untimed run (the compile, and anything warming up). Both measure
wall-clock seconds with ``time.perf_counter``.

The chapters that train agents (reinforce, baselines, natural_gradient, qlearning,
ddpg_td3_sac, model_based) use them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jax

from rlbook import _checks

__all__ = ["Timed", "compile_and_run", "best_time"]


@dataclass(frozen=True)
class Timed:
    """What :func:`compile_and_run` returns: the result, the seconds of each stage, and
    the compiled program (to run again on arguments of the same shapes and dtypes)."""

    out: Any
    compile_s: float
    run_s: float
    compiled: Any


def _function(f):
    if not callable(f):
        raise ValueError(f"f must be a function of arrays (callable), got {f!r}")
    return f if hasattr(f, "lower") else jax.jit(f)


def compile_and_run(f, *args) -> Timed:
    """``f(*args)`` compiled, then run once: its result, compile seconds and run seconds.

    ``f`` is jitted here unless it already is (a ``jax.jit`` function, with ``.lower``).
    The run's seconds include waiting for every output (``jax.block_until_ready``), so
    they are the computation's, not its dispatch's. A compiled program is read back from
    JAX's persistent compilation cache when it is there, so a warm build's compile
    seconds are mostly tracing.
    """
    f = _function(f)
    t0 = time.perf_counter()
    compiled = f.lower(*args).compile()
    t1 = time.perf_counter()
    out = jax.block_until_ready(compiled(*args))
    t2 = time.perf_counter()
    return Timed(out, t1 - t0, t2 - t1, compiled)


def best_time(f, *args, repeats: int = 5) -> float:
    """The fewest seconds of ``repeats`` runs of ``f(*args)``, after one untimed run.

    ``f`` is jitted here unless it already is; each run waits for every output.
    """
    _checks.positive_int("repeats", repeats)
    f = _function(f)
    jax.block_until_ready(f(*args))
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(f(*args))
        times.append(time.perf_counter() - t)
    return min(times)

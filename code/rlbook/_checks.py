"""Input validation shared by every public function of rlbook.

Each check raises ``ValueError`` naming the argument before any computation.
Values that are JAX tracers (inside ``jit``, ``grad`` or ``vmap``) cannot be
inspected, so only their shapes are checked; concrete arrays are checked in
full.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(x) -> bool:
    """True when ``x`` holds values we can read (not a tracer)."""
    return not isinstance(x, jax.core.Tracer)


def _numeric(name: str, x, *, complex_ok: bool = False) -> np.ndarray:
    """``x`` as a numpy array of real numbers, or a ``ValueError`` naming ``name``.

    Strings, ``None``, objects and complex numbers (unless ``complex_ok``) are refused
    here, so that they never reach numpy's own ``TypeError`` (which names no argument).
    """
    try:
        a = np.asarray(x)
    except Exception as err:  # ragged lists and the like
        raise ValueError(f"{name} must be a real number or an array of them, got {x!r}") from err
    if a.dtype.kind not in ("biufc" if complex_ok else "biuf"):
        kind = "number" if complex_ok else "real number"
        raise ValueError(f"{name} must be a {kind} or an array of them, got {x!r}")
    return a


def discount(name: str, gamma, *, allow_one: bool = False) -> None:
    """γ must lie in [0, 1) (or [0, 1] when ``allow_one``)."""
    if not is_concrete(gamma):
        return
    g = _numeric(name, gamma)
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
    a = _numeric(name, x)
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
        isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n > 0 for n in hidden
    ):
        raise ValueError(f"{name} must be a tuple of positive ints, got {hidden!r}")


def ndim(name: str, x, expected: int) -> None:
    if np.ndim(x) != expected:
        raise ValueError(f"{name} must have {expected} dimensions, got shape {np.shape(x)}")


def probabilities(name: str, p, *, axis: int = -1, atol: float = 1e-6) -> None:
    """Entries of ``p`` are non-negative and sum to 1 along ``axis``."""
    if not is_concrete(p):
        return
    a = _numeric(name, p).astype(np.float64)
    if np.any(~np.isfinite(a)) or np.any(a < -atol):
        raise ValueError(f"{name} has negative or non-finite probabilities")
    sums = a.sum(axis=axis)
    if not np.allclose(sums, 1.0, atol=atol * max(1, a.shape[axis])):
        worst = float(np.max(np.abs(sums - 1.0)))
        raise ValueError(f"{name} must sum to 1 along axis {axis} (largest deviation {worst:.3g})")


def finite(name: str, x, *, complex_ok: bool = False) -> None:
    """Every entry of ``x`` is a finite real number (or complex, with ``complex_ok``),
    checked only when concrete."""
    if not is_concrete(x):
        return
    a = _numeric(name, x, complex_ok=complex_ok)
    if not np.all(np.isfinite(a)):
        bad = a[~np.isfinite(a)].ravel()[:3]
        raise ValueError(f"{name} must be finite, got {bad}")


def finite_tree(name: str, tree) -> list:
    """``tree`` is an array or a pytree of real arrays with at least one leaf, every concrete
    leaf finite; returns the leaves. ``None`` and strings are refused by name
    (``tree_leaves(None)`` is empty); traced leaves have only their dtype checked."""
    if tree is None or isinstance(tree, (str, bytes)):
        raise ValueError(f"{name} must be an array or a pytree of arrays, got {tree!r}")
    leaves = jax.tree_util.tree_leaves(tree)
    if not leaves:
        raise ValueError(f"{name} must be a pytree with at least one array leaf, got {tree!r}")
    for leaf in leaves:
        real(name, leaf)
        finite(name, leaf)
    return leaves


def real(name: str, x) -> None:
    """``x`` holds real numbers (bool, int or float): not strings, objects or complex."""
    if is_concrete(x):
        _numeric(name, x)
    elif not (
        jax.numpy.issubdtype(x.dtype, jax.numpy.number)
        or jax.numpy.issubdtype(x.dtype, jax.numpy.bool_)
    ):
        raise ValueError(f"{name} must be real-valued, got dtype {x.dtype}")


def floating(x):
    """``x`` as a JAX array, integers and bools promoted to JAX's default float.

    A float array is returned as ``jnp.asarray`` returns it (same dtype, same bits),
    so real-valued maths never runs in integer arithmetic (where 0.9 becomes 0).
    """
    a = jax.numpy.asarray(x)
    if not jax.numpy.issubdtype(a.dtype, jax.numpy.inexact):
        a = a.astype(jax.numpy.result_type(float))
    return a


def float_dtype(name: str, dtype):
    """``dtype`` (``None``: JAX's default float) as a floating ``jnp.dtype``, else
    ``ValueError``."""
    try:
        d = jax.numpy.dtype(dtype or jax.numpy.result_type(float))
    except TypeError as err:
        raise ValueError(f"{name} must be a floating dtype, got {dtype!r}") from err
    if not jax.numpy.issubdtype(d, jax.numpy.floating):
        raise ValueError(f"{name} must be a floating dtype (float32 or float64), got {d}")
    return d


def index(name: str, i, n: int, *, what: str = "an index", allow_float: bool = False) -> None:
    """Entries of ``i`` are integers in [0, n); tracers are left alone (shape checks only).

    Bools are refused; floats too, unless ``allow_float`` (then they must be whole
    numbers), for functions that compare an action with an integer rather than index.
    """
    if not is_concrete(i):
        return
    a = _numeric(name, i)
    if a.dtype.kind == "b" or (a.dtype.kind == "f" and not allow_float):
        raise ValueError(f"{name} must be {what} (an integer), got dtype {a.dtype}")
    if a.dtype.kind == "f" and not np.all(np.isfinite(a) & (a == np.floor(a))):
        raise ValueError(f"{name} must be {what} (an integer), got {a.ravel()[:3]}")
    bad = (a < 0) | (a >= n)
    if np.any(bad):
        raise ValueError(f"{name} must lie in [0, {n}) ({what}), got {a[bad].ravel()[:3]}")


def nan_unless(valid, x):
    """``x`` where ``valid`` holds and NaN where it does not, in every floating leaf of the
    pytree ``x`` (integer and bool leaves are returned as they are).

    For results that depend on an index :func:`index` could not check because it was
    traced: an out-of-range index marks its result NaN instead of silently reading the
    nearest valid entry (JAX's indexing clamps) or dropping a write. A concrete ``valid``
    returns ``x`` unchanged: concrete indices were refused before any work.
    """
    if is_concrete(valid):
        return x

    def mark(v):
        if jnp.issubdtype(jnp.result_type(v), jnp.inexact):
            return jnp.where(valid, v, jnp.nan)
        return v

    return jax.tree_util.tree_map(mark, x)


def non_negative_int(name: str, n) -> None:
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {n!r}")


def nonempty_widths(name: str, hidden) -> None:
    """``hidden`` is a non-empty tuple of positive ints (bools refused)."""
    widths(name, hidden)
    if not hidden:
        raise ValueError(f"{name} must be a non-empty tuple of positive ints, got {hidden!r}")


def interval(
    name: str,
    x,
    low: float,
    high: float,
    *,
    low_open: bool = False,
    high_open: bool = False,
    scalar: bool = True,
) -> None:
    """A concrete real ``x`` (a scalar, or with ``scalar=False`` every entry of an array)
    lies in the interval from ``low`` to ``high``; NaN is outside every interval."""
    if not is_concrete(x):
        return
    a = _numeric(name, x)
    if scalar and a.shape != ():
        raise ValueError(f"{name} must be a scalar, got shape {a.shape}")
    ok = (
        np.isfinite(a)
        & (a > low if low_open else a >= low)
        & (a < high if high_open else a <= high)
    )
    if not np.all(ok):
        brackets = ("(" if low_open else "[") + f"{low}, {high}" + (")" if high_open else "]")
        got = x if scalar else a[~ok].ravel()[:3]
        raise ValueError(f"{name} must lie in {brackets}, got {got!r}")


def size(name: str, n) -> None:
    """``n`` is a positive integer usable as an array size (any integer type, not bool)."""
    import operator

    if isinstance(n, (bool, np.bool_)) or not is_concrete(n):
        raise ValueError(f"{name} must be a positive integer (a concrete size), got {n!r}")
    try:
        k = operator.index(n)
    except TypeError as err:
        raise ValueError(f"{name} must be a positive integer, got {n!r}") from err
    if k <= 0:
        raise ValueError(f"{name} must be a positive integer, got {n!r}")


# --------------------------------------------------------------------------- MDPs
# The checks of rlbook.mdp.MDP and its policies and values, shared by mdp and every module
# that takes an MDP.


def require_mdp(mdp) -> None:
    """``mdp`` is an :class:`rlbook.mdp.MDP` (its contents are checked by :func:`an_mdp`)."""
    from rlbook.mdp import MDP  # mdp imports this module

    if not isinstance(mdp, MDP):
        raise ValueError(f"mdp must be an rlbook.mdp.MDP, got {type(mdp).__name__}")


def an_mdp(mdp) -> None:
    """An :class:`rlbook.mdp.MDP` with consistent shapes, floating dtypes, distributions
    where it has them, finite rewards and a discount in [0, 1)."""
    require_mdp(mdp)
    P, r, rho0, gamma = mdp
    ndim("mdp.P", P, 3)
    S, A, S2 = np.shape(P)
    if S != S2 or S == 0 or A == 0:
        raise ValueError(f"mdp.P must have shape [S, A, S] with S, A >= 1, got {np.shape(P)}")
    for name, x in (("mdp.P", P), ("mdp.r", r), ("mdp.rho0", rho0)):
        dt = np.asarray(x).dtype if is_concrete(x) else x.dtype
        if not np.issubdtype(dt, np.floating):
            raise ValueError(
                f"{name} must have a floating dtype (float32 or float64), got {dt} "
                f"(build the MDP with rlbook.mdp.make_mdp, which converts)"
            )
    if np.shape(r) != (S, A):
        raise ValueError(f"mdp.r must have shape {(S, A)} to match mdp.P, got {np.shape(r)}")
    if np.shape(rho0) != (S,):
        raise ValueError(f"mdp.rho0 must have shape {(S,)} to match mdp.P, got {np.shape(rho0)}")
    probabilities("mdp.P", P, axis=-1)
    probabilities("mdp.rho0", rho0)
    finite("mdp.r", r)
    discount("mdp.gamma", gamma)


def policy(mdp, pi, name: str = "pi") -> None:
    """``pi`` a policy of ``mdp``: shape [S, A], each row a distribution."""
    if np.shape(pi) != (mdp.n_states, mdp.n_actions):
        raise ValueError(
            f"{name} must have shape [S, A] = {(mdp.n_states, mdp.n_actions)}, got {np.shape(pi)}"
        )
    probabilities(name, pi, axis=-1)


def values(mdp, x, name: str, kind: str) -> None:
    """``x`` a finite real value function of ``mdp``: V ([S], ``kind='v'``) or Q ([S, A])."""
    shape = (mdp.n_states,) if kind == "v" else (mdp.n_states, mdp.n_actions)
    if np.shape(x) != shape:
        raise ValueError(f"{name} must have shape {shape}, got {np.shape(x)}")
    real(name, x)
    finite(name, x)

"""The XLA:CPU thread-pool deadlock of batched LAPACK kernels, and its cure.

jaxlib's batched LAPACK kernels split their batch into tasks on XLA's intra-op pool and
block until the tasks finish. Two independent batched triangular solves in one program
run at once, one on each thread of a two-thread pool, and each then waits for tasks queued
behind the other: the program never returns. With the pool at one thread
(``PJRT_NPROC=1``, set by ``import rlbook`` and by the build) jaxlib runs each batch inline.
"""

import os
import subprocess
import sys

import pytest

import bookbuild as book

# Large enough that jaxlib splits each batch into tasks (over 2e5 flops per solve).
PROGRAM = """
import os, sys
if sys.argv[1] == "import-rlbook":
    import rlbook  # noqa: F401  (before JAX's first computation)
import jax, jax.numpy as jnp
from jax.scipy.linalg import solve_triangular

@jax.jit
def two_solves(a, b, c, d):
    return solve_triangular(a, b, lower=True).sum() + solve_triangular(c, d, lower=True).sum()

k = jax.random.split(jax.random.PRNGKey(0), 4)
a, c = (jnp.tril(jax.random.normal(k[i], (256, 32, 32))) + 10 * jnp.eye(32) for i in (0, 1))
b, d = (jax.random.normal(k[i], (256, 32, 32)) for i in (2, 3))
for _ in range(50 if sys.argv[2] == "solves" else 0):
    two_solves(a, b, c, d).block_until_ready()
jnp.ones(3).block_until_ready()
names = [open(f"/proc/self/task/{t}/comm").read().strip() for t in os.listdir("/proc/self/task")]
print(os.environ.get("PJRT_NPROC"), names.count("tf_XLAEigen"))
"""


def run(mode: str, env: dict[str, str], work: str = "solves") -> str:
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM, mode, work],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.split()


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="reads Linux thread names")
def test_chapter_kernels_run_concurrent_batched_solves_on_one_thread():
    env = book.kernel_env()
    env.pop("JAX_COMPILATION_CACHE_DIR")
    assert run("plain", env) == ["1", "1"]


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="reads Linux thread names")
def test_importing_rlbook_first_is_enough():
    env = {k: v for k, v in os.environ.items() if k != "PJRT_NPROC"}
    assert run("import-rlbook", env) == ["1", "1"]


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="reads Linux thread names")
def test_an_explicit_choice_is_kept():
    env = dict(os.environ, PJRT_NPROC="3")
    # The reader's choice stands (no solves: whether three threads can deadlock is not asked).
    assert run("import-rlbook", env, work="none") == ["3", "3"]


@pytest.mark.reproduce
def test_two_threads_deadlock_without_the_cure():
    """What the cure is for: with jaxlib 0.10.2 the default two-thread pool of this 2-core
    machine never returns from the first call (`make reproduce`; not part of `make test`).
    When this starts failing, the jaxlib in the lock no longer deadlocks."""
    env = dict(os.environ, PJRT_NPROC="2")
    with pytest.raises(subprocess.TimeoutExpired):
        subprocess.run(
            [sys.executable, "-c", PROGRAM, "plain", "solves"],
            env=env,
            capture_output=True,
            timeout=30,
        )


@pytest.mark.parametrize(
    "given, expected",
    [
        (None, "--xla_backend_optimization_level=1"),
        ("--xla_dump_to=/tmp/x", "--xla_dump_to=/tmp/x --xla_backend_optimization_level=1"),
        ("--xla_backend_optimization_level=3", "--xla_backend_optimization_level=3"),
    ],
)
def test_importing_rlbook_sets_xla_optimization_level_1_unless_a_level_is_given(given, expected):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    if given is not None:
        env["XLA_FLAGS"] = given
    out = subprocess.run(
        [sys.executable, "-c", "import os, rlbook; print(os.environ['XLA_FLAGS'])"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert out.stdout.strip() == expected

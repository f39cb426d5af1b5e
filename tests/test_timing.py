"""rlbook.timing: the result is f's own, the seconds are the stages', bad input is refused."""

import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlbook import timing


def test_compile_and_run_returns_f_of_args_and_a_program_that_runs_again():
    def f(x, y):
        return {"sum": x + y, "prod": x * y}

    x, y = jnp.arange(3.0), jnp.full(3, 2.0)
    timed = timing.compile_and_run(f, x, y)
    np.testing.assert_array_equal(timed.out["sum"], np.arange(3.0) + 2.0)
    np.testing.assert_array_equal(timed.out["prod"], 2.0 * np.arange(3.0))
    np.testing.assert_array_equal(timed.compiled(y, x)["sum"], np.arange(3.0) + 2.0)
    assert timed.compile_s > 0 and timed.run_s > 0


def test_an_already_jitted_function_is_compiled_as_it_is():
    calls = []

    @jax.jit
    def f(x):
        calls.append(1)  # runs once per trace
        return 2 * x

    timed = timing.compile_and_run(f, jnp.ones(2))
    np.testing.assert_array_equal(timed.out, np.full(2, 2.0))
    assert len(calls) == 1


def sleeping(seconds):
    """f(x) = x + 0, where the 0 comes from the host after sleeping: f's result waits for it."""

    def host(x):
        time.sleep(seconds(x))
        return np.zeros((), np.float32)

    return lambda x: x + jax.pure_callback(host, jax.ShapeDtypeStruct((), jnp.float32), x)


def test_the_run_seconds_are_the_computation_not_its_dispatch():
    ran = []
    timed = timing.compile_and_run(sleeping(lambda x: ran.append(1) or 0.2), jnp.zeros(()))
    assert ran == [1]  # compiling did not run it; running did, once
    assert timed.run_s >= 0.2


def test_best_time_is_the_fastest_run_after_a_warm_up():
    n = []
    slow_first = sleeping(lambda x: 0.3 if n.append(1) or len(n) == 1 else 0.05)
    best = timing.best_time(slow_first, jnp.zeros(()), repeats=3)
    assert len(n) == 4  # one untimed run, three timed
    assert 0.05 <= best < 0.3


@pytest.mark.parametrize("f", ["x", None, 3])
def test_a_function_that_is_not_callable_is_refused(f):
    with pytest.raises(ValueError, match="^f must"):
        timing.compile_and_run(f, jnp.zeros(()))
    with pytest.raises(ValueError, match="^f must"):
        timing.best_time(f, jnp.zeros(()))


@pytest.mark.parametrize("repeats", [0, -1, 2.5, True, "3"])
def test_repeats_must_be_a_positive_integer(repeats):
    ran = []
    with pytest.raises(ValueError, match="^repeats must"):
        timing.best_time(lambda x: ran.append(1) or x, jnp.zeros(()), repeats=repeats)
    assert not ran  # refused before any work

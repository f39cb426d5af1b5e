"""rlbook.text: numbers glued into the prose are plain Python numbers."""

import jax.numpy as jnp
import numpy as np
import pytest

from rlbook.text import plain


@pytest.mark.parametrize(
    "value, expected, kind",
    [
        (np.float64(0.2), 0.2, float),
        (np.float32(1.5), 1.5, float),
        (np.int64(3), 3, int),
        (jnp.float32(2.5), 2.5, float),
        (jnp.asarray(4), 4, int),
        (np.array(0.25), 0.25, float),
        (7, 7, int),
        (0.5, 0.5, float),
        ("text", "text", str),
    ],
)
def test_numbers_become_python_numbers(value, expected, kind):
    got = plain(value)
    assert type(got) is kind and got == expected
    if kind is float:
        assert f"{got:.2f}" == f"{expected:.2f}" and "np." not in repr(got)


def test_an_array_is_refused():
    with pytest.raises(ValueError, match="scalar"):
        plain(np.arange(3.0))

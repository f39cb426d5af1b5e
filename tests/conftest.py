import jax
import pytest

# Unit tests check exact identities to tight tolerances: double precision throughout.
jax.config.update("jax_enable_x64", True)


@pytest.fixture
def key():
    return jax.random.PRNGKey(0)


ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def built_book():
    """A cold build of the whole book into _build/html, shared by every test that reads it."""
    from rlbook import book

    result = book.build(ROOT, cold=not book.reuse_cache(), quiet=True)
    return result

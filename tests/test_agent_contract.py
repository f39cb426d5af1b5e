"""The contract every agent keeps: ``make_train(config)`` returns ``train(key)``, a function
of one key (vmap it over seeds), which returns ``(state, metrics)``: the final state, and a
dict of metrics whose every leaf has the log step as its leading axis, the same length for
all, among them the returns the agent collected or evaluated (offline Q-learning, which
collects none, reports its error to Q* instead).

Checked by tracing (``jax.eval_shape``), at the tiny sizes of ``sharded_runs.small_trains``.
Fitted Q-iteration is the one exception: a batch method on a fixed data set,
``fqi.run(key, data, config)`` returns a ``Result`` (critic, actor, the mean target of each
iteration).
"""

import jax
import pytest

from sharded_runs import small_trains

TRAINS = small_trains()
EXCEPTIONS = {"fqi"}
OFFLINE = {"offline_q": "error"}  # no episodes: what it reports in place of a return


@pytest.mark.parametrize("name", sorted(set(TRAINS) - EXCEPTIONS))
def test_train_maps_a_key_to_state_and_per_log_metrics(name):
    out = jax.eval_shape(TRAINS[name], jax.random.PRNGKey(0))
    assert isinstance(out, tuple) and len(out) == 2, f"{name}: train(key) is not (state, metrics)"
    state, metrics = out
    assert jax.tree_util.tree_leaves(state), f"{name}: an empty state"
    assert isinstance(metrics, dict) and metrics, f"{name}: metrics are not a dict"
    lengths = {leaf.shape[0] if leaf.ndim else None for leaf in jax.tree_util.tree_leaves(metrics)}
    assert len(lengths) == 1 and None not in lengths, f"{name}: leading axes {lengths}"
    wanted = OFFLINE.get(name, "return")
    assert any(wanted in k for k in metrics), f"{name}: no {wanted} among {sorted(metrics)}"


def test_the_exception_is_what_it_says():
    from rlbook.agents import fqi

    out = jax.eval_shape(TRAINS["fqi"], jax.random.PRNGKey(0))
    assert isinstance(out, fqi.Result) and set(out._fields) == {"critic", "actor", "mean_target"}
    assert EXCEPTIONS <= set(TRAINS)


def test_every_agent_module_with_make_train_is_covered():
    import importlib
    import pkgutil

    import rlbook.agents

    with_make_train = {
        m.name
        for m in pkgutil.iter_modules(rlbook.agents.__path__)
        if hasattr(importlib.import_module(f"rlbook.agents.{m.name}"), "make_train")
    }
    covered = {name.split("_pendulum")[0] for name in TRAINS} | {"svg", "offpolicy"}
    assert with_make_train <= covered, with_make_train - covered

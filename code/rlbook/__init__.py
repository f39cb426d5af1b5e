"""rlbook: the package every chapter of the book imports.

One module per idea; building blocks are small pure functions of arrays,
unbatched, batched by the caller with ``jax.vmap``, with randomness only through
an explicit ``jax.random`` key passed first.

===================  =========================================================
module               holds
===================  =========================================================
``mdp``              tabular MDPs as arrays: Garnet MDPs, T^π and T^*, value
                     iteration, exact evaluation, visitation, occupancy, J(π);
                     the soft operator T_β and projected value iteration
``envs``             CartPole-v1 and Pendulum-v1 in JAX, faithful to Gymnasium
``distributions``    sample, log-prob, entropy and KL of the book's distributions
``nets``             multilayer perceptrons in plain JAX
``replay``           a replay buffer as a fixed-size pytree
``agents.qlearning`` tabular Q-learning with Robbins–Monro step sizes
``agents.dqn``       DQN: replay buffer, target network, ``make_train(config)``
``plotting``         shared figure helpers (the only module importing matplotlib)
``book``             the build driver behind ``make book``, ``make bench`` and
                     ``make notebooks`` (not imported by chapters)
===================  =========================================================

Chapters add modules as they need them (``estimators``, ``returns``,
``natural``, ``ntk``, ``agents/``); the map above grows with them.
"""

__version__ = "0.1.0"

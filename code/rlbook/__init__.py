"""rlbook: the package every chapter of the book imports.

One module per idea; building blocks are small pure functions of arrays,
unbatched, batched by the caller with ``jax.vmap``, with randomness only through
an explicit ``jax.random`` key passed first.

===================  =========================================================
module               holds
===================  =========================================================
``mdp``              tabular MDPs as arrays: Garnet MDPs, T^π and T^*, value
                     iteration, exact evaluation, visitation, occupancy, J(π)
``envs``             CartPole-v1 and Pendulum-v1 in JAX, faithful to Gymnasium
``distributions``    sample, log-prob, entropy and KL of the book's distributions
``nets``             multilayer perceptrons in plain JAX
``replay``           a replay buffer as a fixed-size pytree
``noise``            exploration noise: the Ornstein–Uhlenbeck process by Euler–Maruyama
``agents.offpolicy`` what DDPG, TD3 and SAC share: TD target, critic step, Polyak
                     targets, the training loop as one ``lax.scan``
``agents.ddpg``      DDPG (deterministic actor, OU exploration)
``agents.td3``       TD3 (clipped double Q, delayed actor, target smoothing)
``agents.sac``       SAC (tanh-Gaussian actor, twin critics, learned temperature)
``plotting``         shared figure helpers (the only module importing matplotlib)
``book``             the build driver behind ``make book``, ``make bench`` and
                     ``make notebooks`` (not imported by chapters)
===================  =========================================================

Chapters add modules as they need them (``estimators``, ``returns``,
``natural``, ``ntk``, ``agents/``); the map above grows with them.
"""

__version__ = "0.1.0"

"""rlbook: the package every chapter of the book imports.

One module per idea; building blocks are small pure functions of arrays,
unbatched, batched by the caller with ``jax.vmap``, with randomness only through
an explicit ``jax.random`` key passed first.

======================= =======================================================
module                  holds
======================= =======================================================
``seeds``               every key and generator of the book from one build seed
                        (RLBOOK_SEED); seed sets for calibrated claims
``claims``              learning claims checked against calibrated thresholds;
                        z bounds for Monte-Carlo tolerances
``mdp``                 tabular MDPs as arrays: Garnet MDPs, T^π and T^*, value
                        iteration, exact evaluation, visitation, occupancy,
                        J(π); the soft operator T_β, projected value
                        iteration; second moments of returns and of GAE
``envs``                CartPole-v1 and Pendulum-v1 in JAX, faithful to
                        Gymnasium; a tabular MDP as an environment
``distributions``       sample, log-prob, entropy and KL of the book's
                        distributions
``estimators``          score-function, reparameterization and naive gradient
                        estimators of ∇_θ E_{x∼p(x;θ)}[f(x, θ)]; control variates
``nets``                multilayer perceptrons in plain JAX
``policies``            softmax, Gaussian and tabular policies: sample, log-prob,
                        entropy, KL for one observation (vmap to batch)
``rollouts``            N environments side by side for T steps in one lax.scan,
                        auto-reset, a time-major Trajectory and episode returns
``returns``             discounted returns / reward-to-go with termination and
                        truncation, TD errors and GAE(γ, λ), each as a
                        readable loop and a reverse scan
``replay``              a replay buffer as a fixed-size pytree
``natural``             Fisher-vector products (a jvp of the mean-KL gradient),
                        conjugate gradient, natural and KL-sized steps
``counterexamples``     Baird's star and the two-state w → 2w example: MDPs with
                        linear features on which off-policy TD(0) diverges
``ntk``                 empirical neural tangent kernels, the linearized TD
                        update, its contraction modulus, PreQN
``agents.reinforce``    REINFORCE: make_train(config) and a readable update loop
``agents.actor_critic`` policy gradient with a learned value baseline and GAE
``agents.npg``          sampled natural policy gradient
``agents.trpo``         TRPO: importance-weighted surrogate, mean KL, the
                        KL-limited backtracking line search (vectorized and as
                        a loop), natural step, GAE critic
``agents.ppo``          PPO: the clipped surrogate L^CLIP, E epochs of K
                        minibatches, GAE critic
``agents.qlearning``    tabular Q-learning with Robbins–Monro step sizes
``agents.dqn``          DQN: replay buffer, target network
``agents.offline_q``    Q-learning of an MLP on a fixed off-policy dataset: the
                        semi-gradient step or PreQN (the td_divergence chapter)
``agents.offpolicy``    what DDPG, TD3 and SAC share: TD target, critic and actor
                        steps, target updates, the one-scan training loop
``agents.ddpg``         DDPG (Lillicrap et al. 2016) with OU exploration
``agents.td3``          TD3: clipped double Q, delayed actor, target smoothing
``agents.sac``          SAC with twin critics and a learned temperature
``agents.fqi``          fitted Q-iteration with explicit maximization, amortized
                        maximizers, NFQCA
``agents.svg``          policy optimization through a model: one-step pathwise
                        and score-function gradients, BPO's n-step objective
                        and its forward recursion, noise inference, SVG(1) and
                        SVG(∞) on Pendulum's differentiable dynamics
``noise``               the Ornstein–Uhlenbeck process (Euler–Maruyama)
``parallel``            an agent's train over seeds and a hyperparameter grid on
                        every device JAX has (jit + NamedSharding; one device:
                        exactly jit(vmap))
``plotting``            shared figure helpers (the only module importing
                        matplotlib)
``timing``              seconds of XLA's compile apart from the run's, and the
                        best of a few runs
======================= =======================================================

Each module's docstring names the chapter that derives what it computes.
"""

import os as _os

# XLA:CPU runs jaxlib's batched LAPACK kernels on its intra-op thread pool, each blocking
# until its batch's tasks on that same pool finish: two at once on a two-thread pool wait
# for each other forever (tests/test_runtime.py). A one-thread pool runs batches inline.
# This takes effect if rlbook is imported before JAX's first computation, as every chapter
# does; set PJRT_NPROC yourself to choose otherwise.
_os.environ.setdefault("PJRT_NPROC", "1")

# XLA:CPU compiles at backend optimization level 1 instead of XLA's default 3: on this
# book's CPUs compiling costs more than computing, and level 1 compiles every chapter
# faster. Executing each chapter cold (an empty compilation cache, one chapter at a time
# beside its level-3 twin) took 0.78 times the CPU seconds in all, 0.63 to 0.96 per
# chapter; agents train as fast (bench/xla_flags.py). The compiled programs differ, so
# results differ in the last bits, like results on another CPU. A level in XLA_FLAGS is
# kept. Like PJRT_NPROC, this takes effect if rlbook is imported before JAX's first
# computation.
_xla_flags = _os.environ.get("XLA_FLAGS", "")
if "--xla_backend_optimization_level" not in _xla_flags:
    _os.environ["XLA_FLAGS"] = f"{_xla_flags} --xla_backend_optimization_level=1".strip()

__version__ = "0.1.0"

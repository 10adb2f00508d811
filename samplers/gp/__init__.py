"""SimplexGPSampler: Bayesian optimisation of mixtures with a GPyTorch GP on the simplex.

The surrogate is an exact GP (GPyTorch, built through BoTorch's ``SingleTaskGP``): Matern-5/2
ARD kernel with BoTorch's dimension-scaled lengthscale prior, standardised outputs, a learned
Gaussian noise level under a LogNormal prior, hyperparameters fitted by MAP. Its input is
every declared mixture as a block of raw simplex weights, plus the study's other float/int
parameters (log scale where the distribution is log) and one-hot categoricals.

The acquisition is BoTorch's qLogNoisyExpectedImprovement (noise-aware: it integrates over
the noisy incumbent instead of trusting the best observed value), with the running trials of
other workers as ``X_pending`` so that parallel workers propose different mixtures. It is
maximised on the simplex with the equality constraint held exactly: raw candidates cover the
interior (Sobol), faces, edges and vertices, then two rounds of shrinking local moves around
the best (half of them onto a nearby face), every point snapped back onto the simplex;
``n_restarts > 0`` adds an SLSQP refinement under ``sum(w) = 1, 0 <= w <= 1`` (off by
default: no measurable gain in regret for most of a suggestion's time). Weights under 1e-4
are snapped to exactly zero. The search asks for thousands of small joint posteriors, so the
fitted GP is first conditioned once (:class:`~.posterior.ConditionedGP`).

Start-up: the first ``n_startup_trials`` trials take Sobol-on-simplex points indexed by trial
number (one shared design across workers, as :class:`SobolMixtureSampler`).

Composite model: where every completed trial keeps its per-domain losses in a user attr
(``losses``, as optuna-mix's objectives do) and its value is their mean, max or median, each
loss gets its own GP and the acquisition works on the criterion of their joint posterior.
Each GP's prior mean is then a Data Mixing Law (Ye et al. 2024) fitted to the losses, once
there are enough trials for it: the law carries the global shape, the GP what it misses.
Every tuning constant is named in the module that uses it, with the reason for its value
(and the benchmark in docs/benchmarks/gp-variants.md where one chose it).

Modules, one job each (a module imports only those above it):

=================  ==========================================================================
``space``          the encoded space: parameters <-> columns of X, exact simplex snapping
``candidates``     the raw candidates of the search: global coverage and local moves
``law``            the law prior (LawPrior, LawMean, fit_law) and the hand-over rule
``model``          the training data, the GP and its fit, the typed cache and refit schedule
``posterior``      the fitted GP conditioned once (ConditionedGP); posterior mean and std
``acquisition``    the maximisers of qLogNEI (propose) and of the posterior mean, SLSQP
``pending``        the proposals kept in storage, read back as the running trials' points
``sampler``        SimplexGPSampler and Recommendation
=================  ==========================================================================

Notation (the same in every module; numpy arrays and torch tensors alike):

=========  ==================================================================================
n          completed trials the model is fitted on (failed and pruned ones never count)
d          input columns: k per mixture (k - 1 with ``coordinates="first"``), one per
           float/int parameter, one per category of a categorical parameter, one per
           declared scale (``suggest_scale``: its log model size u, 1 at the target)
k          domains of a mixture (its weights w, a point of the simplex)
m          outputs of the model: 1 (the trial values) or the per-domain losses of a
           composite model (m = k where the law prior is on: output i is domain i)
q          points of one joint posterior: a candidate with qLogNEI's baseline and pending
           points
p          pending points: the running trials of other workers
B          batch of joint posteriors evaluated in one call (the candidates scored at once)
=========  ==================================================================================

Shapes:

X, X_train: the trials' encoded parameters, (n, d), every column in [0, 1].
y: the signed trial values of a one-output model, (n,); maximised (``-value`` where the
    study minimises).
Y: the per-domain losses of a composite model, (n, m); the maximised objective is
    ``Composite.sign * criterion(Y)`` (over the last axis).
x: one encoded point, (d,): a proposal, a recommendation.
X_pending: the running trials' encoded points, (p, d).
centres: the points local moves perturb, (c, d).
w, W: raw mixture weights, (k,) or (..., k); the law's input.
LawPrior.c, .k, .t: the law ``L_i = c_i + k_i exp(t_i . w)``, (m,), (m,) and (m, k); in a
    scale-aware study t is (m, k + 1), its last column s_i on the log size u.
acquisition and posterior inputs: BoTorch's batches of q-point sets, (B, q, d); an
    acquisition value per set, (B,).
ConditionedGP._L, ._alpha: the Cholesky factor of the standardised training covariance plus
    noise, (m, n, n), and ``K^-1 (y - prior mean)``, (m, n).
posterior_mean_std(model, X): the mean and std of the maximised objective at the rows of
    X (r, d), each (r,); posterior_change_mean_std(model, x, X): those of its change from x
    (d,) to each row of X, from the joint posterior of each pair, (r, 2, d).
"""

from optuna_mix.samplers.gp.sampler import Recommendation, SimplexGPSampler

__all__ = ["Recommendation", "SimplexGPSampler"]

"""SimplexGPSampler: Bayesian optimisation of mixtures with a GPyTorch GP on the simplex."""

from optuna_mix.samplers.gp.sampler import Recommendation, SimplexGPSampler

__all__ = ["Recommendation", "SimplexGPSampler"]

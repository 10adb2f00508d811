"""optuna-mix: Bayesian optimisation of pretraining data mixtures on small GPT proxies."""

from optuna_mix.mixture import suggest_mixture
from optuna_mix.scale import suggest_scale

__version__ = "0.1.0"
__all__ = ["__version__", "suggest_mixture", "suggest_scale"]

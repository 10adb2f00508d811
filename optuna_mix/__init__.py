"""optuna-mix: Bayesian optimisation of pretraining data mixtures on small GPT proxies."""

from optuna_mix.mixture import suggest_mixture

__version__ = "0.1.0"
__all__ = ["__version__", "suggest_mixture"]

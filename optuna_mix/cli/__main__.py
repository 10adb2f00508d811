"""``python -m optuna_mix.cli``."""

from optuna_mix.cli import main

main()

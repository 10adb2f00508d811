#!/bin/bash
# Eight optuna-mix workers, one GPU each, on one study in PostgreSQL (docs/distributed.md).
# From the repository root, with optuna-mix installed in the environment you submit from:
#   sbatch --export=ALL,OPTUNA_MIX_STORAGE=postgresql://USER:PASSWORD@HOST:5432/DB docs/distributed/slurm-workers.sh
#SBATCH --job-name=optuna-mix
#SBATCH --array=0-7
#SBATCH --ntasks=1
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --time=24:00:00
#SBATCH --signal=B:TERM@120
#SBATCH --output=optuna-mix-%A_%a.out
set -euo pipefail

STORAGE=${OPTUNA_MIX_STORAGE:?set OPTUNA_MIX_STORAGE to the study database URL}
CONFIG=${OPTUNA_MIX_CONFIG:-studies/dolma5-25m.toml}
STUDY=${OPTUNA_MIX_STUDY:-dolma5-25m}

echo "task ${SLURM_ARRAY_TASK_ID:-0} on $(hostname), GPU ${CUDA_VISIBLE_DEVICES:-none}"
# every task: the first makes the study, the others join it (all at once too, on a new database)
optuna-mix study create --config "$CONFIG" --study-name "$STUDY" --storage "$STORAGE" --load-if-exists
# exec: the worker becomes the batch shell, so --signal=B:TERM reaches it
exec optuna-mix study optimize --study-name "$STUDY" --storage "$STORAGE" --no-progress

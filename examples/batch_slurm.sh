#!/usr/bin/env bash
# A SLURM array job for `dpe batch`: 8 workers, one GPU each, sharing one manifest and one
# results folder (on a file system all nodes see). Each array task takes the jobs whose index
# modulo SLURM_ARRAY_TASK_COUNT equals its task id; resubmitting skips finished jobs.
#
#   sbatch examples/batch_slurm.sh jobs.jsonl results/
#   dpe batch status results/      # done, failed (reasons counted), pending, over all workers
#
#SBATCH --job-name=dpe-batch
#SBATCH --array=0-7
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --time=04:00:00
#SBATCH --output=dpe-batch-%A_%a.log
set -euo pipefail
manifest=${1:?manifest}
results=${2:?results folder}
# SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT pick this worker's share; --device auto uses the GPU.
dpe batch "$manifest" --results "$results" --quiet

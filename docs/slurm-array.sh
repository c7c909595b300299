#!/bin/bash
# Slurm job array: requantize the zoo in manifest.yaml with 4 array tasks on
# a shared filesystem. Slurm sets SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT
# and SLURM_ARRAY_TASK_MIN; quantbridge derives its shard (ID - MIN of COUNT)
# and does exactly its share. Resubmitting after a failure or a preemption
# finishes the remaining items only.
#
#   sbatch docs/slurm-array.sh /shared/zoo/manifest.yaml
#   # afterwards (e.g. sbatch --dependency=afterany:JOBID), one report for all shards:
#   quantbridge batch --report-only --report /shared/zoo/report /shared/zoo/manifest.yaml
#SBATCH --job-name=quantbridge-zoo
#SBATCH --array=0-3
#SBATCH --cpus-per-task=8
#SBATCH --mem=32G
#SBATCH --time=04:00:00
#SBATCH --output=quantbridge-%A_%a.log
set -euo pipefail
MANIFEST=${1:?usage: sbatch slurm-array.sh MANIFEST.yaml}
exec quantbridge batch --jobs "${SLURM_CPUS_PER_TASK:-8}" "$MANIFEST"

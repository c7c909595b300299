#!/bin/bash
# Slurm job array: requantize the zoo in manifest.yaml with 4 array tasks on
# a shared filesystem (docs/batch-clusters.md walks through it).
#
# By default the tasks pull items (quantbridge batch --pull): each claims the
# next unclaimed item, so a 70B model beside 1B ones keeps one task busy while
# the others drain the rest. With QB_BATCH_MODE=shard each task instead does
# the fixed shard that Slurm's SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT and
# SLURM_ARRAY_TASK_MIN give it (ID - MIN of COUNT). Either way, resubmitting
# after a failure, a scancel or a preemption finishes the remaining items
# only: an item with a record (<output>.qb.json) is never redone.
#
#   sbatch docs/slurm-array.sh /shared/zoo/manifest.yaml [BATCH FLAGS...]
#   sbatch --array=0-15 --cpus-per-task=4 --mem=16G docs/slurm-array.sh /shared/zoo/manifest.yaml
#   sbatch --export=ALL,QB_BATCH_MODE=shard docs/slurm-array.sh /shared/zoo/manifest.yaml
#   # afterwards (e.g. sbatch --dependency=afterany:JOBID), one report for all tasks:
#   quantbridge batch --report-only --report /shared/zoo/report /shared/zoo/manifest.yaml
#
# The #SBATCH lines are defaults: sbatch's command-line flags override them.
# Extra arguments after the manifest go to `quantbridge batch` (e.g. --lease 5m).
#SBATCH --job-name=quantbridge-zoo
#SBATCH --array=0-3
#SBATCH --cpus-per-task=8
#SBATCH --mem=32G
#SBATCH --time=04:00:00
#SBATCH --output=quantbridge-%A_%a.log
set -euo pipefail
MANIFEST=${1:?usage: sbatch slurm-array.sh MANIFEST.yaml [BATCH FLAGS...]}
shift
case "${QB_BATCH_MODE:-pull}" in
  pull) mode=(--pull) ;;
  shard) mode=() ;;
  *) echo "slurm-array.sh: QB_BATCH_MODE=${QB_BATCH_MODE} (want pull or shard)" >&2; exit 2 ;;
esac
cpus=${SLURM_CPUS_PER_TASK:-8}
exec quantbridge batch "${mode[@]}" --jobs "$cpus" --threads "$cpus" "$@" "$MANIFEST"

#!/usr/bin/env bash
# Evaluate a checkpoint on a Slurm cluster: srun starts one task per GPU, each
# running tools/test.py with --launcher slurm; the metrics gather the results
# of every task.
#
#   tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [tools/test.py options...]
#
# Variables GPUS, GPUS_PER_NODE, CPUS_PER_TASK, SRUN_ARGS, MASTER_PORT and
# PYTHON: as in tools/slurm_train.sh.
set -euo pipefail
if [ $# -lt 4 ]; then
    echo "usage: $0 PARTITION JOB_NAME CONFIG CHECKPOINT [tools/test.py options...]" >&2
    exit 2
fi
source "$(dirname "${BASH_SOURCE[0]}")/slurm_common.sh"
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
CHECKPOINT=$4
shift 4
run_srun "$PARTITION" "$JOB_NAME" test.py "$CONFIG" "$CHECKPOINT" --launcher slurm "$@"

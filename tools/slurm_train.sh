#!/usr/bin/env bash
# Train on a Slurm cluster: srun starts one task per GPU, each running
# tools/train.py with --launcher slurm.
#
#   tools/slurm_train.sh PARTITION JOB_NAME CONFIG [WORK_DIR] [tools/train.py options...]
#
# WORK_DIR (optional, any 4th argument not starting with '-') becomes
# --work-dir WORK_DIR. Variables, with mmseg's names and meaning:
#   GPUS=4            tasks (GPUs) in all; GPUS > GPUS_PER_NODE spans several nodes
#   GPUS_PER_NODE     GPUs (tasks) per node (default: GPUS, at most 4)
#   CPUS_PER_TASK=5   CPU cores per task (data loader workers)
#   SRUN_ARGS         more srun options, e.g. SRUN_ARGS="--time=24:00:00 --mem=64G"
#   MASTER_PORT=29500 port of the process group (pick another for a second job on a node)
#   PYTHON            interpreter with torch, mmseg and mmgscnn (default: the
#                     project's .venv/bin/python when it exists, else python)
# Example: GPUS=8 GPUS_PER_NODE=4 tools/slurm_train.sh gpu gscnn CONFIG work_dirs/gscnn --amp
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: $0 PARTITION JOB_NAME CONFIG [WORK_DIR] [tools/train.py options...]" >&2
    exit 2
fi
source "$(dirname "${BASH_SOURCE[0]}")/slurm_common.sh"
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
shift 3
WORK_DIR=()
if [ $# -gt 0 ] && [[ $1 != -* ]]; then
    WORK_DIR=(--work-dir "$1")
    shift
fi
run_srun "$PARTITION" "$JOB_NAME" train.py "$CONFIG" ${WORK_DIR[@]+"${WORK_DIR[@]}"} \
    --launcher slurm "$@"

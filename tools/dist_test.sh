#!/usr/bin/env bash
# Evaluate a checkpoint on several GPUs (and machines) with torchrun: one
# process per GPU, each running tools/test.py with --launcher pytorch; the
# metrics gather the results of every process.
#
#   tools/dist_test.sh CONFIG CHECKPOINT GPUS [tools/test.py options...]
#
# Several machines, and the variables NNODES, NODE_RANK, MASTER_ADDR, PORT and
# PYTHON: as in tools/dist_train.sh.
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: $0 CONFIG CHECKPOINT GPUS [tools/test.py options...]" >&2
    exit 2
fi
source "$(dirname "${BASH_SOURCE[0]}")/dist_common.sh"
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
shift 3
run_torchrun "$GPUS" test.py "$CONFIG" "$CHECKPOINT" --launcher pytorch "$@"

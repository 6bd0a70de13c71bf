#!/usr/bin/env bash
# Train on several GPUs (and machines) with torchrun: one process per GPU, each
# running tools/train.py with --launcher pytorch.
#
#   tools/dist_train.sh CONFIG GPUS [tools/train.py options...]
#
# GPUS is the number of processes on this machine. For several machines, run
# the same command on each, with the same NNODES, MASTER_ADDR and PORT and its
# own NODE_RANK (0 on the machine at MASTER_ADDR):
#
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 PORT=29500 tools/dist_train.sh CONFIG 8
#   NNODES=2 NODE_RANK=1 MASTER_ADDR=10.0.0.1 PORT=29500 tools/dist_train.sh CONFIG 8
#
# Variables: NNODES (default 1), NODE_RANK (0), MASTER_ADDR (127.0.0.1),
# PORT (29500; pick another one for a second job on the same machine),
# PYTHON (interpreter with torch and mmgscnn; default: the project's
# .venv/bin/python when it exists, else python).
# The process group uses env_cfg.dist_cfg.backend of the config (mmseg's
# runtime: nccl; gloo for CPU processes).
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 CONFIG GPUS [tools/train.py options...]" >&2
    exit 2
fi
source "$(dirname "${BASH_SOURCE[0]}")/dist_common.sh"
CONFIG=$1
GPUS=$2
shift 2
run_torchrun "$GPUS" train.py "$CONFIG" --launcher pytorch "$@"

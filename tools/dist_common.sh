# Sourced by tools/dist_train.sh and tools/dist_test.sh.
# run_torchrun GPUS TOOL ARGS...: one process per GPU on this machine running
# tools/TOOL with ARGS (the callers add --launcher pytorch); NNODES (1), NODE_RANK (0), MASTER_ADDR
# (127.0.0.1) and PORT (29500) come from the environment; the interpreter is
# $PYTHON, else the project's .venv/bin/python, else python (find_python.sh).
source "$(dirname "${BASH_SOURCE[0]}")/find_python.sh"
run_torchrun() {
    local gpus=$1 tool=$2
    shift 2
    if ! [[ $gpus =~ ^[1-9][0-9]*$ ]]; then
        echo "$0: GPUS must be a positive number of processes per machine, got '$gpus'" >&2
        exit 2
    fi
    local root
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
    exec "$(find_python "$root")" -m torch.distributed.run \
        --nnodes="${NNODES:-1}" \
        --node_rank="${NODE_RANK:-0}" \
        --master_addr="${MASTER_ADDR:-127.0.0.1}" \
        --master_port="${PORT:-29500}" \
        --nproc_per_node="$gpus" \
        "$root/tools/$tool" "$@"
}

# Sourced by tools/slurm_train.sh and tools/slurm_test.sh.
# run_srun PARTITION JOB_NAME TOOL ARGS...: one srun task per GPU, each running
# tools/TOOL with ARGS (the callers add --launcher slurm: mmengine then reads
# rank, world size and master address from Slurm's variables).
# Environment: GPUS (tasks in all, default 4), GPUS_PER_NODE (default GPUS, at
# most 4), CPUS_PER_TASK (5), SRUN_ARGS (more srun options, split at spaces),
# MASTER_PORT (29500, read by mmengine); the interpreter is $PYTHON, else the
# project's .venv/bin/python, else python (find_python.sh).
source "$(dirname "${BASH_SOURCE[0]}")/find_python.sh"
run_srun() {
    local partition=$1 job_name=$2 tool=$3
    shift 3
    local gpus=${GPUS:-4}
    check_count GPUS "$gpus"
    local gpus_per_node=${GPUS_PER_NODE:-$(( gpus < 4 ? gpus : 4 ))}
    local cpus_per_task=${CPUS_PER_TASK:-5}
    check_count GPUS_PER_NODE "$gpus_per_node"
    check_count CPUS_PER_TASK "$cpus_per_task"
    local srun_args=()
    read -r -a srun_args <<< "${SRUN_ARGS:-}"
    local root
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
    local cmd=(srun -p "$partition" --job-name="$job_name" --gres=gpu:"$gpus_per_node"
               --ntasks="$gpus" --ntasks-per-node="$gpus_per_node"
               --cpus-per-task="$cpus_per_task" --kill-on-bad-exit=1
               ${srun_args[@]+"${srun_args[@]}"}
               "$(find_python "$root")" -u "$root/tools/$tool" "$@")
    printf '+ %s\n' "${cmd[*]}" >&2
    exec "${cmd[@]}"
}

# check_count NAME VALUE: exit 2 unless VALUE is a positive whole number.
check_count() {
    if ! [[ $2 =~ ^[1-9][0-9]*$ ]]; then
        echo "$0: $1 must be a positive whole number, got '$2'" >&2
        exit 2
    fi
}

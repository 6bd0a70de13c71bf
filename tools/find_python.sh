# Sourced by tools/dist_common.sh and tools/slurm_common.sh.
# find_python ROOT: the interpreter the launchers run: $PYTHON when set (an
# explicit choice), else the project's ROOT/.venv/bin/python when it exists
# (made by `make setup`), else `python` from PATH.
find_python() {
    if [ -n "${PYTHON:-}" ]; then
        printf '%s\n' "$PYTHON"
    elif [ -x "$1/.venv/bin/python" ]; then
        printf '%s\n' "$1/.venv/bin/python"
    else
        printf 'python\n'
    fi
}

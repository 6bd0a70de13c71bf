#!/usr/bin/env bash
# Creates the project's virtual environment (.venv) and installs the whole stack.
# Idempotent: a second run that finds everything in place returns in seconds.
#
# Environment variables:
#   PYTHON               interpreter that creates the venv        (default: python3)
#   VENV                 where the venv lives                     (default: .venv)
#   TORCH_SPEC           torch requirement when the venv has none (default: torch==2.13.0)
#   MMGSCNN_WHEELHOUSE   folder with a prebuilt mmcv wheel        (default: ../shared/wheels if it exists)
#   MMCV_BUILD_JOBS      parallel jobs for an mmcv source build   (default: number of cores)
set -u
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
# Exact versions come from requirements/constraints.txt, applied to every pip call.
MMCV_VERSION=$(sed -n 's/^mmcv==\([^ #]*\).*/\1/p' requirements/constraints.txt)
if [ -z "${MMGSCNN_WHEELHOUSE:-}" ] && [ -d ../shared/wheels ]; then
  MMGSCNN_WHEELHOUSE=$(cd ../shared/wheels && pwd)
fi
WHEELHOUSE=${MMGSCNN_WHEELHOUSE:-}
VPY="$VENV/bin/python"
STAMP="$VENV/.mmgscnn-setup"

say() { printf '[setup] %s\n' "$*"; }
fail() {  # fail STEP HINT
  printf '[setup] FAILED at step "%s".\n[setup] What to do: %s\n' "$1" "$2" >&2
  exit 1
}
[ -n "$MMCV_VERSION" ] || fail "read requirements/constraints.txt" "it must pin mmcv (a line mmcv==VERSION)"
pipi() { "$VPY" -m pip install --disable-pip-version-check -q -c requirements/constraints.txt "$@"; }

# Everything that decides what gets installed; a change re-runs the full set-up.
fingerprint() {
  cat requirements/*.txt setup.py tools/setup_env.sh \
    | "$PYTHON" -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())'
}

# --- step 0: interpreter -------------------------------------------------------
command -v "$PYTHON" >/dev/null 2>&1 \
  || fail "find python" "install Python 3.8-3.12 or point PYTHON=/path/to/python3 at one"
"$PYTHON" -c 'import sys; sys.exit(not ((3, 8) <= sys.version_info[:2] <= (3, 12)))' \
  || fail "check python version" "mmcv 2.1.0 / mmseg 1.2.2 support Python 3.8-3.12; found $("$PYTHON" --version 2>&1). Set PYTHON=python3.11 (or another supported one)"
FP=$(fingerprint)

# --- fast path -------------------------------------------------------------------
if [ -x "$VPY" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$FP" ] \
   && "$VPY" -c 'import mmcv.ops, mmseg, mmgscnn' >/dev/null 2>&1; then
  say "environment $VENV is up to date"
  exit 0
fi

# --- step 1: virtual environment -------------------------------------------------
if [ ! -x "$VPY" ]; then
  say "creating virtual environment $VENV with $("$PYTHON" --version 2>&1)"
  "$PYTHON" -m venv "$VENV" \
    || fail "create venv" "install the venv module (Debian/Ubuntu: apt install python3-venv) or remove a broken $VENV"
fi
pipi "setuptools<81" wheel packaging \
  || fail "install build tools" "check network access to PyPI (or a pip mirror configured in pip.conf), then re-run make setup"

# --- step 2: torch ---------------------------------------------------------------
if "$VPY" -c 'import torch' >/dev/null 2>&1; then
  say "torch $("$VPY" -c 'import torch; print(torch.__version__)') already installed, keeping it"
else
  say "installing $TORCH_SPEC"
  pipi "$TORCH_SPEC" \
    || fail "install torch" "install a torch build yourself into $VENV ($VPY -m pip install torch==...) or set TORCH_SPEC, then re-run make setup"
fi

# --- step 3: mmcv with compiled ops ------------------------------------------------
mmcv_ok() {
  "$VPY" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VERSION'" >/dev/null 2>&1
}
if mmcv_ok; then
  say "mmcv $MMCV_VERSION with compiled ops already installed"
else
  # numpy, opencv etc. first: mmcv's build imports some of them.
  pipi numpy addict yapf pyyaml pillow opencv-python mmengine ninja \
    || fail "install mmcv build dependencies" "check network access to PyPI, then re-run make setup"
  if [ -n "$WHEELHOUSE" ]; then
    say "trying a prebuilt mmcv $MMCV_VERSION wheel from $WHEELHOUSE"
    if pipi --no-index --no-deps --find-links "$WHEELHOUSE" "mmcv==$MMCV_VERSION" >/dev/null 2>&1 && mmcv_ok; then
      say "prebuilt mmcv wheel works with this torch"
    else
      say "no prebuilt wheel fits this Python/torch (compiled ops are tied to one torch build)"
      "$VPY" -m pip uninstall -y -q mmcv >/dev/null 2>&1
    fi
  fi
  if ! mmcv_ok; then
    SRC="mmcv==$MMCV_VERSION"
    [ -n "$WHEELHOUSE" ] && [ -f "$WHEELHOUSE/mmcv-$MMCV_VERSION.tar.gz" ] && SRC="$WHEELHOUSE/mmcv-$MMCV_VERSION.tar.gz"
    JOBS=${MMCV_BUILD_JOBS:-$(nproc 2>/dev/null || echo 2)}
    say "building mmcv $MMCV_VERSION with ops from source ($SRC), $JOBS jobs."
    say "this compiles mmcv's C++ ops: the slow step of the setup (faster with more cores); it happens once per venv."
    t0=$(date +%s)
    MMCV_WITH_OPS=1 MAX_JOBS=$JOBS pipi --no-build-isolation --no-deps "$SRC" \
      || fail "build mmcv $MMCV_VERSION from source" "needs gcc/g++ and the Python headers (Debian: apt install build-essential python3-dev); see the pip output above. Or give a wheelhouse with a matching wheel: MMGSCNN_WHEELHOUSE=/path make setup"
    say "mmcv built in $(( $(date +%s) - t0 )) s"
    mmcv_ok || fail "import mmcv.ops" "the build finished but mmcv.ops does not import; remove $VENV and re-run make setup"
  fi
fi

# --- step 4: the rest of the stack and the package ----------------------------------
say "installing runtime and test requirements"
pipi -r requirements/runtime.txt -r requirements/tests.txt \
  || fail "install requirements" "check network access to PyPI; the exact versions are in requirements/constraints.txt, the ranges in requirements/runtime.txt"
pipi --no-deps --no-build-isolation -e . \
  || fail "install mmgscnn (pip install -e .)" "see the pip output above; setup.py must be importable with setuptools<81"

# --- step 5: verify ----------------------------------------------------------------------
"$VPY" -c 'import mmcv.ops, mmseg, mmgscnn' \
  || fail "verify imports" "the traceback above names the module; remove $VENV and re-run make setup"
echo "$FP" > "$STAMP"
say "done: $("$VPY" -c 'import torch, mmcv, mmseg, mmengine; print(f"torch {torch.__version__}, mmcv {mmcv.__version__}, mmengine {mmengine.__version__}, mmseg {mmseg.__version__}")')"

#!/usr/bin/env bash
# Mutation testing of the core modules with mutmut 3 (not run in CI: hours on
# 2 cores). Each group of modules is mutated in its own copy of the tree under
# $MUTATION_DIR and every mutant is run against that group's tests only.
#
#   make mutation                        # every group below
#   make mutation MUTATION_GROUPS="gcl bce_loss"    # some of them
#
# Environment: PY (python with mutmut, default .venv/bin/python), MUTATION_GROUPS,
# MUTATION_DIR (default /tmp/mmgscnn-mutation), MUTATION_JOBS (parallel
# mutants, default 1). Survivors of group G are listed in
# $MUTATION_DIR/G/survivors.txt (see them with `cd $MUTATION_DIR/G &&
# $PY -m mutmut show NAME`); the score of every group in $MUTATION_DIR/summary.txt.
set -u
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
PY=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")
DIR=${MUTATION_DIR:-/tmp/mmgscnn-mutation}
JOBS=${MUTATION_JOBS:-1}
M=mmgscnn/models
E=mmgscnn/evaluation/metrics
T=tests
F="$T/test_method_formulas.py $T/test_core_edge_cases.py"
LOSS_TESTS="$F $T/test_loss_rewrites_equivalence.py"
# (not its Dynamo test: mutmut's trampolines keep Dynamo from tracing the Function whole)
GT=$T/test_gcl_training.py

# group | files to mutate (globs) | tests
TABLE="
gcl|$M/shape_stream/gated_spatial_conv.py|$T/test_gated_spatial_conv.py $F $T/test_norm_conv.py::test_gcl_keeps_no_normalised_copy_of_its_input $GT::test_equals_the_modules $GT::test_one_full_resolution_pass_fewer
image_gradient|$M/shape_stream/image_gradient.py|$T/test_image_gradient.py $F
boundary_targets|$M/shape_stream/boundary_targets.py|$T/test_boundary_targets.py $LOSS_TESTS
shape_stream|$M/shape_stream/shape_stream.py|$T/test_shape_stream.py $F $T/test_stream_rewrites_equivalence.py
norm_conv|$M/shape_stream/norm_conv.py|$T/test_norm_conv.py $T/test_recomputing_block.py $GT::test_equals_the_modules
gcl_training|$M/shape_stream/gcl_training.py|$GT::test_equals_the_modules $GT::test_gradcheck $GT::test_applies_only_where_exact $GT::test_a_frozen_norm_bias_gets_no_gradient_the_scale_does $GT::test_one_full_resolution_pass_fewer $T/test_norm_conv.py
recomputing_block|$M/shape_stream/recomputing_block.py|$T/test_recomputing_block.py
fusions|$M/shape_stream/*fusion.py|$T/test_boundary_fusion.py $T/test_aspp_boundary_fusion.py $T/test_classifier_boundary_fusion.py $F
bce_loss|$M/losses/boundary_bce_loss.py|$T/test_boundary_bce_loss.py $LOSS_TESTS
attention_loss|$M/losses/boundary_attention_loss.py|$T/test_boundary_attention_loss.py $LOSS_TESTS
dual_task_loss|$M/losses/dual_task_loss.py|$T/test_dual_task_loss.py $LOSS_TESTS
loss_utils|$M/losses/utils.py|$T/test_boundary_attention_loss.py $T/test_dual_task_loss.py $LOSS_TESTS
upsample|$M/utils/upsample.py|$T/test_upsample.py $T/test_stream_rewrites_equivalence.py
constants|$M/utils/constants.py|$T/test_constants.py $T/test_upsample.py
gated_shape_head|$M/decode_heads/gated_shape_head.py|$T/test_gated_shape_head.py $T/test_loss_rewrites_equivalence.py $F
segmentors|$M/segmentors/*.py|$T/test_gscnn_encoder_decoder.py $T/test_gscnn_tta_model.py $T/test_gscnn_tta_values.py
boundary_fscore|$E/boundary_fscore.py|$T/test_boundary_fscore.py $T/test_boundary_fscore_fast.py
boundary_iou|$E/boundary_iou.py|$T/test_boundary_iou.py
crop_iou|$E/crop_iou_metric.py|$T/test_crop_iou_metric.py
metric_utils|$E/utils.py|$T/test_metric_label_range.py $T/test_boundary_fscore.py $T/test_crop_iou_metric.py
"
ALL=$(echo "$TABLE" | cut -d'|' -f1 | xargs)
GROUPS_RUN=${MUTATION_GROUPS:-$ALL}

"$PY" -c 'import mutmut' 2>/dev/null || {
  echo "[mutation] mutmut is not installed: $PY -m pip install -r requirements/mutation.in" >&2
  exit 1; }
mkdir -p "$DIR"
for group in $GROUPS_RUN; do
  row=$(echo "$TABLE" | grep "^$group|") || { echo "[mutation] unknown group $group; one of: $ALL" >&2; exit 1; }
  files=$(echo "$row" | cut -d'|' -f2)
  tests=$(echo "$row" | cut -d'|' -f3)
  work="$DIR/$group"
  rm -rf "$work" && mkdir -p "$work"
  cp -r mmgscnn tests setup.py "$work"/
  {
    echo "[mutmut]"
    echo "source_paths = mmgscnn"
    echo "only_mutate ="; for f in $files; do echo "    $f"; done
    echo "pytest_add_cli_args_test_selection ="; for t in $tests; do echo "    $t"; done
    echo "pytest_add_cli_args = -p no:cacheprovider -x -q"
    echo "use_git_change_detection = false"
  } > "$work/setup.cfg"
  echo "[mutation] $group: mutating $files against $tests"
  start=$(date +%s)
  (cd "$work" && OMP_NUM_THREADS=1 nice -n 10 "$PY" -m mutmut run --max-children "$JOBS" \
     > run.log 2>&1)
  (cd "$work" && "$PY" -m mutmut results --all true > results.txt 2>&1)
  grep -E ': (survived|no tests|timeout|suspicious)' "$work/results.txt" > "$work/survivors.txt"
  total=$(grep -cE ': [a-z]' "$work/results.txt")
  killed=$(grep -cE ': killed' "$work/results.txt")
  line="$group: $killed of $total mutants killed ($(( $(date +%s) - start )) s)"
  echo "[mutation] $line"
  echo "$line" >> "$DIR/summary.txt"
done

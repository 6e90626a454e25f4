#!/usr/bin/env bash
# Regenerate reports/<name>/ for every reference model: convert its exported fp32
# model.onnx to fp16 and evaluate both on the full test set. The model trained under
# mixed_float16 is evaluated as it was exported, against the float32 rebuild of its weights.
#   bash models/make_reports.sh [extra halfconv run/evaluate options, e.g. --provider cpu]
set -euo pipefail
cd "$(dirname "$0")/.."
HALFCONV="${HALFCONV:-.venv/bin/halfconv}"
EXTRA=("$@")

report() {  # report MODEL DATASET REPORT_NAME [halfconv run options...]
    local model="$1" dataset="$2" name="$3"
    shift 3
    "$HALFCONV" run "models/$model/model.onnx" --dataset "$dataset" --report-dir "reports/$name" --quiet "$@" "${EXTRA[@]}"
}

report mnist_mlp_keras mnist mnist_mlp_keras
report mnist_mlp_torch mnist mnist_mlp_torch
report cifar10_cnn_keras cifar10 cifar10_cnn_keras
report cifar10_resnet_torch cifar10 cifar10_resnet_torch
report mnist_deepconvnet mnist mnist_deepconvnet
# fp16 inputs and outputs end to end: preprocessing feeds float16 (no calibration: its trials compare in float32).
report mnist_deepconvnet mnist mnist_deepconvnet_fp16_io --no-keep-io-types --no-calibration
report mnist_mlp3_tf mnist mnist_mlp3_tf
report mnist_mlp_torch_amp mnist mnist_mlp_torch_amp
"$HALFCONV" evaluate models/cifar10_cnn_keras_mixed/model.onnx --baseline models/cifar10_cnn_keras_mixed/model.fp32.onnx \
    --dataset cifar10 --report-dir reports/cifar10_cnn_keras_mixed --quiet "${EXTRA[@]}"

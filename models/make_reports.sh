#!/usr/bin/env bash
# Regenerate reports/<model>/ for every reference model: convert its exported fp32
# model.onnx to fp16 and evaluate both on the full test set.
#   bash models/make_reports.sh [extra halfconv run options, e.g. --provider cpu]
set -euo pipefail
cd "$(dirname "$0")/.."
HALFCONV="${HALFCONV:-.venv/bin/halfconv}"
for entry in mnist_mlp_keras:mnist mnist_mlp_torch:mnist cifar10_cnn_keras:cifar10 cifar10_resnet_torch:cifar10; do
    name="${entry%%:*}"
    dataset="${entry##*:}"
    "$HALFCONV" run "models/$name/model.onnx" --dataset "$dataset" --report-dir "reports/$name" --quiet "$@"
done

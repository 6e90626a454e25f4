"""Two models' accuracy on a test split, image by image: A against B.

    HALFCONV_DATA_DIR=/work/shared/datasets python models/compare.py A.onnx B.onnx --dataset mnist|cifar10

For two separately trained models (the AMP-trained MLP against the plain one, the
mixed-trained CNN against the float32-trained one), where ``halfconv evaluate`` would call
A "fp32" and B "fp16". Each model is evaluated the way ``halfconv evaluate`` does it, fp16
storage emulated on ONNX Runtime's CPU provider for a model that stores float16, on the
whole test split, and the paired figures are printed: the images B gets right and A wrong,
the reverse, the exact McNemar p-value and the 95% interval of B - A.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from halfconv.evaluation import EvaluateOptions, evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--dataset", required=True)
    args = parser.parse_args()
    options = EvaluateOptions(dataset=args.dataset, baseline=args.a, provider="cpu", latency_batch_sizes=(1,), warmup=1, iters=1)
    report = evaluate(args.b, options)
    a, b, paired = report.models[0], report.models[1], report.comparison
    assert paired is not None
    low, high = paired.delta_ci95_pp
    print(f"A {args.a}: {a.accuracy:.2%} ({a.numerics or 'float32'})")
    print(f"B {args.b}: {b.accuracy:.2%} ({b.numerics or 'float32'})")
    print(
        f"B - A {paired.accuracy_delta_pp:+.2f} pp; B right where A is wrong: {paired.flips_to_right}, the reverse: "
        f"{paired.flips_to_wrong}; McNemar p = {paired.mcnemar_p:.3g}; 95% interval {low:+.2f} to {high:+.2f} pp"
    )


if __name__ == "__main__":
    main()

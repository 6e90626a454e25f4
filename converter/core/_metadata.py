"""Keys of the model metadata_props that halfconv writes and reads back."""

from __future__ import annotations

__all__ = ["CALIBRATION_KEY", "CONVERSION_KEY", "EXPORT_KEY", "PREPROCESS_KEY", "SOURCE_MODEL_KEY"]

# Written by `convert`: the float32 model it came from, relative to the converted model.
SOURCE_MODEL_KEY = "halfconv.source_model"
# Written by `convert`: JSON of the conversion facts (target, engine, nodes kept, casts).
CONVERSION_KEY = "halfconv.conversion"
# Written by `export`: JSON of the preprocessing (layout, scale, mean, std, dataset, class names).
PREPROCESS_KEY = "halfconv.preprocess"
# Written by a calibrated `convert`: JSON of the calibration (its data, the budget, the trials).
CALIBRATION_KEY = "halfconv.calibration"
# Written by `export`: JSON of what the framework model was ({"framework", "compute_dtype"});
# compute_dtype float16 marks a model trained and exported under mixed precision.
EXPORT_KEY = "halfconv.export"

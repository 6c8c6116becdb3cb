"""Train a tiny model in a server's own venv and write the model and one sample request.

``train.py FORMAT MODEL_DIR``: FORMAT is ``sklearn``, ``xgboost``, ``lightgbm`` (the frameworks
MLServer serves) or ``linear`` (weights for the KServe SDK model in ``kserve_custom_server.py``).
Beside the model it writes ``sample.json``: a V2 inference request of four rows and the
predictions the framework itself makes for them, which the server must return.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def main() -> None:
    fmt, out = sys.argv[1], Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    features = rng.normal(size=(200, 4)).astype(np.float32)
    labels = (features[:, 0] + 0.5 * features[:, 1] > 0).astype(np.int64)
    rows = features[:4]
    if fmt == "sklearn":
        import joblib  # noqa: PLC0415 (only the format trained is installed where this runs)
        from sklearn.linear_model import LogisticRegression  # noqa: PLC0415 (only the format trained is installed where this runs)

        model = LogisticRegression().fit(features, labels)
        joblib.dump(model, out / "model.joblib")
        expected = model.predict(rows).tolist()
    elif fmt == "xgboost":
        import xgboost  # noqa: PLC0415 (only the format trained is installed where this runs)

        booster = xgboost.XGBClassifier(n_estimators=8, max_depth=2).fit(features, labels)
        booster.save_model(out / "model.bst")
        expected = booster.predict(rows).tolist()
    elif fmt == "lightgbm":
        import lightgbm  # noqa: PLC0415 (only the format trained is installed where this runs)

        data = lightgbm.Dataset(features, label=labels)
        booster = lightgbm.train({"objective": "binary", "verbose": -1, "num_leaves": 4}, data, 8)
        booster.save_model(str(out / "model.bst"))
        expected = booster.predict(rows).tolist()
    elif fmt == "linear":
        weights = np.linalg.lstsq(features, labels.astype(np.float32), rcond=None)[0]
        (out / "model.json").write_text(json.dumps({"weights": weights.tolist()}), encoding="utf-8")
        expected = (rows @ weights).tolist()
    else:
        raise SystemExit(f"unknown format {fmt!r}")
    request = {
        "inputs": [
            {
                "name": "input-0",
                "shape": list(rows.shape),
                "datatype": "FP32",
                "data": rows.flatten().tolist(),
            }
        ]
    }
    sample = {"request": request, "expected": expected}
    (out / "sample.json").write_text(json.dumps(sample), encoding="utf-8")


if __name__ == "__main__":
    main()

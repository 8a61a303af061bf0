"""ACES-style DNN vs RandomForest(500) on the real ACES Paro points, over several training seeds: the
seed-to-seed spread behind the README's real-points row (tests/rice/test_rice_models.py asserts seed 0 within
it).

Trains on the 8,316 training points (early stopping on the 2,385 validation points), scores the 1,219 testing
points; RandomForest(500) with the same seed beside. Torch on one thread (as the test).

    TERRALAB_DATA_MIRROR=../shared/data python benchmarks/rice_aces_points.py            # seeds 0–4
    python benchmarks/rice_aces_points.py --data ../shared/data --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        default=os.environ.get("TERRALAB_DATA_MIRROR", "../shared/data"),
        help="folder holding rice/aces_paro_2021/ (default: $TERRALAB_DATA_MIRROR or ../shared/data)",
    )
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2, 3, 4])
    args = parser.parse_args()

    import pandas as pd
    import torch
    from scipy.stats import binomtest

    from terralab import rice
    from terralab.rice import features

    torch.set_num_threads(1)
    folder = Path(args.data) / "rice" / "aces_paro_2021"
    train, val, test = (
        pd.read_csv(folder / f"aces_dnn_points_{p}.csv") for p in ("training", "validation", "testing")
    )
    bands = features.band_names("RGBN")
    rows = []
    for seed in args.seeds:
        dnn = rice.fit(
            train,
            model="dnn",
            bands=bands,
            validation=val,
            epochs=300,
            patience=20,
            seed=seed,
            progress=False,
        )
        rf = rice.fit(train, model="rf", bands=bands, n_estimators=500, seed=seed, progress=False)
        s_dnn, s_rf = (rice.evaluate.independent_evaluation(m, test) for m in (dnn, rf))
        right_dnn = rice.predict_points(dnn, test)["class"].to_numpy() == test["class"].to_numpy()
        right_rf = rice.predict_points(rf, test)["class"].to_numpy() == test["class"].to_numpy()
        only_rf, only_dnn = int((right_rf & ~right_dnn).sum()), int((right_dnn & ~right_rf).sum())
        p = binomtest(only_rf, only_rf + only_dnn, 0.5).pvalue
        row = {
            "seed": seed,
            "dnn_rice_f1": s_dnn.loc["rice", "f1"],
            "dnn_oa": s_dnn.attrs["overall_accuracy"],
            "dnn_kappa": s_dnn.attrs["kappa"],
            "rf_rice_f1": s_rf.loc["rice", "f1"],
            "rf_oa": s_rf.attrs["overall_accuracy"],
            "rf_kappa": s_rf.attrs["kappa"],
            "mcnemar_p": p,
        }
        rows.append(row)
        print(
            " ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()),
            flush=True,
        )
    table = pd.DataFrame(rows).set_index("seed")
    print("\nmean:\n" + table.mean().round(4).to_string())
    print("\nspread (max − min) over seeds:\n" + (table.max() - table.min()).round(4).to_string())
    print(
        f"\nDNN − RF overall accuracy, mean over seeds: {np.mean(table['dnn_oa'] - table['rf_oa']):+.4f}; "
        f"McNemar p < 0.05 in {int((table['mcnemar_p'] < 0.05).sum())}/{len(table)} seeds"
    )


if __name__ == "__main__":
    main()

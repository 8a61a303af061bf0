"""Dengue backtest speed: fit and backtest every non-image model on the five DengueNet cities.

For each model of ``terralab.dengue.available_models(images=False)``: load nothing new, fit on every week
before 2018w37 (covariates loaded as the backtest does by default) and forecast 2018w37–w52 one week ahead;
best of ``--repeats`` runs. Prints seconds per model, each model's time relative to persistence measured in
the same process, the test MAE beside it, and the ratio of the total to the 60-second goal of issue 6.

``--lstm-seeds`` also backtests the LSTM with seeds 0-4 and prints each MAE, their mean, largest deviation
from it and standard deviation (``tests/dengue/test_dengue_backtest.py`` allows the mean +- 2 SD around the
seed-0 figure).

Run: ``.venv/bin/python benchmarks/dengue_backtest.py [--repeats 1] [--source colombia_denguenet]
[--lstm-seeds]``
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

GOAL_S = 60.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1, help="runs per model; the best is kept")
    parser.add_argument("--source", default="colombia_denguenet")
    parser.add_argument("--test-start", default="2018w37")
    parser.add_argument("--test-end", default="2018w52")
    parser.add_argument("--lstm-seeds", action="store_true", help="LSTM MAE for seeds 0-4 (its seed spread)")
    args = parser.parse_args()

    from terralab import dengue

    cases = dengue.load_cases(args.source)
    covariates = None
    if dengue.has_covariates(args.source):
        try:
            covariates = dengue.load_covariates(args.source, list(cases.columns))
        except Exception as exc:  # noqa: BLE001 - the benchmark runs without covariates when offline
            warnings.warn(f"no covariates ({exc}); timing the models on cases alone", stacklevel=1)
    print(
        f"{args.source}: {cases.shape[1]} locations x {len(cases)} weeks; test "
        f"{args.test_start}-{args.test_end}; covariates: {'yes' if covariates is not None else 'no'}"
    )

    rows = []
    for name in dengue.available_models(images=False):
        best, mae = float("inf"), float("nan")
        for _ in range(max(1, args.repeats)):
            t0 = time.perf_counter()
            fc = dengue.backtest(
                cases,
                name,
                covariates=covariates if covariates is not None else False,
                test_start=args.test_start,
                test_end=args.test_end,
            )
            best = min(best, time.perf_counter() - t0)
            mae = dengue.score(fc)["mae"].mean()
        rows.append((name, best, mae))

    base = {n: s for n, s, _ in rows}["persistence"]
    total = sum(s for _, s, _ in rows)
    print(f"{'model':<16}{'seconds':>9}{'x persistence':>15}{'test MAE':>10}")
    for name, secs, mae in rows:
        print(f"{name:<16}{secs:>9.3f}{secs / base:>15.1f}{mae:>10.2f}")
    print(
        f"total {total:.1f} s for {len(rows)} models; ratio to the {GOAL_S:.0f}-s goal: {total / GOAL_S:.2f} "
        f"({'met' if total < GOAL_S else 'NOT met'})"
    )
    if args.lstm_seeds:
        maes = [
            dengue.score(
                dengue.backtest(
                    cases,
                    "lstm",
                    covariates=covariates if covariates is not None else False,
                    test_start=args.test_start,
                    test_end=args.test_end,
                    seed=seed,
                )
            )["mae"].mean()
            for seed in range(5)
        ]
        mean, sd = statistics.mean(maes), statistics.stdev(maes)
        print(
            "lstm MAE, seeds 0-4: "
            + ", ".join(f"{m:.2f}" for m in maes)
            + f"; mean {mean:.2f}, largest deviation {max(abs(m - mean) for m in maes):.2f}, SD {sd:.2f}"
            + f" (mean +- 2 SD: {mean - 2 * sd:.2f}-{mean + 2 * sd:.2f})"
        )


if __name__ == "__main__":
    main()

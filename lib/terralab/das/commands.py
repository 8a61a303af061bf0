"""``terralab das …``: the DAS workflow's commands (registered under the ``terralab.commands`` entry point).

* ``terralab das classifier [--model PATH]``: what the packaged (or a given) vehicle classifier was trained on
  and its training accuracy;
* ``terralab das retrain-classifier [--simulator halfspace|bump|both] [--scenes N] [--seed S] [--out PATH]``:
  detect vehicles in ``N`` random scenes of that simulator (seeds ``S``, ``S + 1``, …; 2000+ are used by
  nothing else), match them to the truth and fit the classifier on them; writes the JSON model atomically
  (default: the packaged ``vehicle_classifier.json``, so give ``--out`` to keep it).

>>> build_parser().parse_args(["retrain-classifier", "--scenes", "4"]).scenes
4
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from ..options import count_option

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``terralab das`` argument parser."""
    from .classify import MODEL_PATH

    parser = argparse.ArgumentParser(prog="terralab das", description="DAS traffic workflow commands.")
    sub = parser.add_subparsers(dest="das_command", metavar="ACTION")
    sub.required = True
    show = sub.add_parser("classifier", help="what the vehicle classifier was trained on, and its accuracy")
    show.add_argument(
        "--model", default=str(MODEL_PATH), help="a classifier JSON (default: the packaged one)"
    )
    show.set_defaults(func=_cmd_classifier)
    train = sub.add_parser(
        "retrain-classifier",
        help="re-train the vehicle classifier on simulated traffic (detections matched to the truth)",
    )
    train.add_argument("--simulator", default="halfspace", choices=("bump", "halfspace", "both"))
    train.add_argument("--scenes", type=count_option(), default=48, help="scenes (default 48)")
    train.add_argument("--seed", type=int, default=2000, help="first scene's seed (default 2000)")
    train.add_argument("--out", default=str(MODEL_PATH), help="where to write the JSON model")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(func=_cmd_retrain)
    return parser


def _cmd_classifier(args: argparse.Namespace) -> int:
    from .classify import load_classifier

    print(json.dumps(load_classifier(args.model).metrics, indent=2))
    return 0


def _cmd_retrain(args: argparse.Namespace) -> int:
    from .classify import train

    progress = False if args.no_progress else None
    metrics = train(args.simulator, args.scenes, seed=args.seed, path=args.out, progress=progress)
    print(json.dumps(metrics, indent=2))
    print(f"wrote {args.out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``terralab das ARGV``; returns the exit code."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)

"""Rebuild the embedded dengue extracts from the real data folder (run from the repository root).

    python lib/terralab/data/dengue/make_extract.py ../shared/data/dengue

Writes beside this script (values copied unchanged, as text):

* ``colombia_denguenet_weekly_cases.csv`` (year, week, one column per DANE code; the SIVIGILA table's 52 weeks
  a year) and ``colombia_denguenet_population.csv`` (year, one column per code), from
  ``colombia/DANE_Dengue_Data_Variables_v3.csv``;
* ``colombia_denguenet_temperature.csv`` and ``colombia_denguenet_precipitation.csv``: the ``LastDayWeek``
  column and the five DengueNet municipalities' columns of SatelliteBench's ``colombia/temperature.csv`` and
  ``precipitation.csv`` (every row, the source's column names and text unchanged);
* ``dengai_labels_train.csv.gz`` and ``dengai_features_train.csv.gz``: the DengAI files ``dengai/*.csv``
  compressed with gzip (no time stamp, so the bytes are reproducible); decompressed they are byte-identical to
  the source.
"""

import gzip
import sys
from pathlib import Path

import pandas as pd

from terralab.files import atomic_path

CODES = [5001, 76001, 73001, 50001, 54001]


def _cases(src: Path, here: Path) -> None:
    raw = pd.read_csv(src, encoding="latin-1").set_index("Municipalitycode").loc[CODES]
    week_cols = [c for c in raw.columns if "/w" in c]
    cases = raw[week_cols].T
    cases.insert(0, "week", [int(c.split("/w")[1]) for c in week_cols])
    cases.insert(0, "year", [int(c.split("/w")[0]) for c in week_cols])
    with atomic_path(here / "colombia_denguenet_weekly_cases.csv") as tmp:
        cases.to_csv(tmp, index=False)
    pop_cols = [c for c in raw.columns if c.startswith("Population")]
    pop = raw[pop_cols].T
    pop.index = [int(c[len("Population") :]) for c in pop_cols]
    pop.index.name = "year"
    with atomic_path(here / "colombia_denguenet_population.csv") as tmp:
        pop.to_csv(tmp)


def _covariate(src: Path, out: Path) -> None:
    # read as text so that every value is written back exactly as the source has it
    raw = pd.read_csv(src, dtype=str, keep_default_na=False)
    var = next(c for c in raw.columns if c != "LastDayWeek").split("_", 1)[0]
    by_code = {int(c.split("_", 1)[1]): c for c in raw.columns if c.startswith(var + "_")}
    with atomic_path(out) as tmp:
        raw[["LastDayWeek"] + [by_code[c] for c in CODES]].to_csv(tmp, index=False)


def _gzip_copy(src: Path, out: Path) -> None:
    with atomic_path(out) as tmp:
        Path(tmp).write_bytes(gzip.compress(src.read_bytes(), compresslevel=9, mtime=0))


def main(root: str) -> None:
    root = Path(root)
    here = Path(__file__).resolve().parent
    _cases(root / "colombia" / "DANE_Dengue_Data_Variables_v3.csv", here)
    for var in ("temperature", "precipitation"):
        _covariate(root / "colombia" / f"{var}.csv", here / f"colombia_denguenet_{var}.csv")
    for name in ("dengue_labels_train.csv", "dengue_features_train.csv"):
        _gzip_copy(root / "dengai" / name, here / f"dengai_{name[len('dengue_') :]}.gz")


if __name__ == "__main__":
    main(sys.argv[1])

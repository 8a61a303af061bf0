"""Rebuild the embedded DengueNet extract from the SIVIGILA table (run from the repository root).

    python lib/terralab/data/dengue/make_extract.py ../shared/data/dengue/colombia/DANE_Dengue_Data_Variables_v3.csv

Writes colombia_denguenet_weekly_cases.csv (year, week, one column per DANE code; the table's 52 weeks a year,
unchanged) and colombia_denguenet_population.csv (year, one column per code) beside this script.
"""

import sys
from pathlib import Path

import pandas as pd

from terralab.files import atomic_path

CODES = [5001, 76001, 73001, 50001, 54001]


def main(src: str) -> None:
    here = Path(__file__).resolve().parent
    raw = pd.read_csv(src, encoding="latin-1").set_index("Municipalitycode").loc[CODES]
    week_cols = [c for c in raw.columns if "/w" in c]
    cases = raw[week_cols].T
    cases.insert(0, "week", [int(c.split("/w")[1]) for c in week_cols])
    cases.insert(0, "year", [int(c.split("/w")[0]) for c in week_cols])
    with atomic_path(here / "colombia_denguenet_weekly_cases.csv") as tmp:
        cases.to_csv(tmp, index=False)
    pop_cols = [c for c in raw.columns if c.startswith("Population")]
    pop = raw[pop_cols].T
    pop.index = [int(c[len("Population"):]) for c in pop_cols]
    pop.index.name = "year"
    with atomic_path(here / "colombia_denguenet_population.csv") as tmp:
        pop.to_csv(tmp)


if __name__ == "__main__":
    main(sys.argv[1])

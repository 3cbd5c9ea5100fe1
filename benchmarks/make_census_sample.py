"""Write the Census-Income (KDD) sample shipped in ``skmtl/data``.

Draws 4,000 rows of ``census-income.data.gz`` and 2,000 of
``census-income.test.gz``, stratified on (income label, marital status is
"Never married"), and writes them with every value exactly as in the UCI files
(leading space stripped, ``?`` kept) under the short column names, plus
``source_file`` and ``source_row`` (0-based line in the source file)::

    python benchmarks/make_census_sample.py /work/shared/data/census-income

The output is byte-for-byte reproducible (fixed seed, gzip mtime 0). Update
``skmtl/data/census_income_sample.rst`` with the printed summary.
"""

import argparse
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from skmtl.datasets import _COLUMNS

SEED = 20180819  # KDD 2018, where MMoE was presented
SIZES = {"census-income.data": 4000, "census-income.test": 2000}
OUT = Path(__file__).resolve().parent.parent / "skmtl" / "data"


def _sample(path, size):
    # Every value is read as text so that it is written back unchanged.
    raw = pd.read_csv(
        path,
        header=None,
        names=list(_COLUMNS),
        skipinitialspace=True,
        dtype=str,
        keep_default_na=False,
    )
    strata = raw["income"] + "|" + (raw["marital_stat"] == "Never married").map(str)
    sample, _ = train_test_split(
        raw, train_size=size, stratify=strata, random_state=SEED
    )
    sample = sample.sort_index()
    sample.insert(len(_COLUMNS), "source_file", path.name.removesuffix(".gz"))
    sample.insert(len(_COLUMNS) + 1, "source_row", sample.index)
    return sample


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path, help="folder with the UCI .gz files")
    args = parser.parse_args()
    parts = [_sample(args.data_dir / f"{n}.gz", k) for n, k in SIZES.items()]
    sample = pd.concat(parts, ignore_index=True)
    target = OUT / "census_income_sample.csv.gz"
    sample.to_csv(target, index=False, compression={"method": "gzip", "mtime": 0})
    print(f"wrote {target} ({target.stat().st_size:,} bytes)")
    for name, part in sample.groupby("source_file", sort=False):
        income = (part["income"] == "50000+.").sum()
        never = (part["marital_stat"] == "Never married").sum()
        print(
            f"{name}: {len(part):,} rows; income 50000+. {income:,} "
            f"({income / len(part):.2%}); never married {never:,} "
            f"({never / len(part):.2%})"
        )


if __name__ == "__main__":
    main()

"""Plot one-epoch fit time and peak memory against rows from the results files.

Reads every ``results/*.jsonl`` holding the ``memory`` measurement (one file
per row count, e.g. from ``run.py --rows 1000000 --synthetic --only memory``)
and writes ``docs/benchmarks_fit_vs_rows.png``::

    python benchmarks/plot.py [--results DIR] [--out PNG]
"""

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

HERE = Path(__file__).resolve().parent
SERIES = {
    "skmtl_mmoe_fit1": ("skmtl MMoE fit (1 epoch)", "C0"),
    "bare_mmoe_fit1": ("bare: pandas encoding + 1 epoch", "C1"),
    "rss_skmtl_mmoe_fit": ("skmtl peak RSS growth", "C0"),
    "rss_bare_mmoe_fit": ("bare peak RSS growth", "C1"),
}


def collect(results):
    """Return ``{name: sorted [(rows, median, record)]}`` over the results files."""
    points = {name: [] for name in SERIES}
    for path in sorted(Path(results).glob("*.jsonl")):
        for line in path.open():
            rec = json.loads(line)
            if rec.get("name") not in points or rec.get("median") is None:
                continue
            # The scaling series: same-shape rows, large enough to matter.
            if rec["rows"] >= 100_000:
                points[rec["name"]].append((rec["rows"], rec["median"], rec))
    return {name: sorted(p, key=lambda t: t[0]) for name, p in points.items()}


def plot(points, out):
    """Draw fit seconds and RSS growth (with tensors+model) against rows."""
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(10, 4))
    for name, (label, color) in SERIES.items():
        pts = points[name]
        if not pts:
            continue
        rows = [p[0] for p in pts]
        ax = ax_m if name.startswith("rss") else ax_t
        ax.plot(rows, [p[1] for p in pts], "o-", color=color, label=label)
        if name == "rss_skmtl_mmoe_fit":
            base = [p[2]["tensors_model_mib"] for p in pts]
            ax.plot(rows, base, "k:", label="encoded tensors + model")
    ax_t.set(xlabel="rows", ylabel="seconds", title="fit, 1 epoch, batch 1024")
    ax_m.set(xlabel="rows", ylabel="MiB", title="peak RSS over the loaded frame")
    for ax in (ax_t, ax_m):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main(argv=None):
    """Parse arguments, collect the points, write the PNG."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", default=str(HERE / "results"))
    p.add_argument(
        "--out", default=str(HERE.parent / "docs" / "benchmarks_fit_vs_rows.png")
    )
    args = p.parse_args(argv)
    plot(collect(args.results), args.out)
    print(args.out)


if __name__ == "__main__":
    main()

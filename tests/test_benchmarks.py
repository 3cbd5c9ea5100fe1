"""The benchmark harness still runs: a tiny synthetic run, checked for its records.

``benchmarks/`` is not part of the package and is never run by the rest of the
test suite; this test runs ``benchmarks/run.py`` at a tiny size in a subprocess
so that the harness cannot silently rot when the package changes.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parent.parent / "benchmarks" / "run.py"
KEYS = {"name", "what", "unit", "values", "median", "spread", "ratio", "baseline",
        "threads", "rows", "source", "torch", "machine", "loadavg_before_after"}  # fmt: skip


@pytest.mark.skipif(not RUN.exists(), reason="benchmarks/ is not in this checkout")
def test_harness_writes_records(tmp_path):
    cmd = [sys.executable, str(RUN), "--quick", "--synthetic", "--rows", "2000",
           "--repeats", "1", "--only", "bare", "skmtl", "--out", str(tmp_path),
           "--tag", "tiny"]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120)
    records = [json.loads(line) for line in (tmp_path / "tiny.jsonl").open()]
    by_name = {r["name"]: r for r in records}
    for model in ("mmoe", "ple"):
        for bs in (1024, 256):
            assert f"bare_{model}_epoch_bs{bs}" in by_name
            assert f"skmtl_{model}_epoch_bs{bs}" in by_name
        assert f"skmtl_{model}_fit_bs1024" in by_name
    assert {"skmtl_dcn_epoch_bs1024", "skmtl_shared_bottom_epoch_bs1024"} <= set(
        by_name
    )
    for rec in records:
        assert KEYS <= set(rec), rec["name"]
        assert rec["values"] and all(v > 0 for v in rec["values"]), rec["name"]
        assert rec["median"] > 0 and rec["rows"] == 2000
    ratio = by_name["skmtl_mmoe_epoch_bs1024"]["ratio"]
    assert ratio is not None and ratio > 0
    assert (tmp_path / "tiny.md").read_text().startswith("# tiny")

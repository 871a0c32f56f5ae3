"""`make bench`: run every bench/bench_*.py and write its Markdown table to bench/results/.

Each module exposes `main(quick: bool) -> str` returning a Markdown report. Speed is compared
against a baseline measured in the same run, because these machines are noisy.
Usage: python -m bench [name ...] [--quick]
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    wanted = [a for a in argv if not a.startswith("-")]
    names = sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if m.name.startswith("bench_"))
    if wanted:
        names = [n for n in names if any(w in n for w in wanted)]
    RESULTS.mkdir(exist_ok=True)
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        started = time.perf_counter()
        print(f"== {name}", flush=True)
        report = module.main(quick=quick)
        took = time.perf_counter() - started
        out = RESULTS / f"{name.removeprefix('bench_')}.md"
        out.write_text(f"{report.rstrip()}\n\n_ran in {took:.1f} s on {time.strftime('%Y-%m-%d')}_\n")
        print(report, flush=True)
        print(f"-> {out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

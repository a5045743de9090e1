#!/usr/bin/env python3
"""RESULTS.md is generated from bench/results.jsonl (`nynorsk_asr.bench.results_page`), never edited by hand.
  python .ci/render_results.py           write RESULTS.md
  python .ci/render_results.py --check   exit 1 when RESULTS.md differs from what bench/results.jsonl renders
"""
import json, sys
from pathlib import Path
from render_readme import ROOT, write_or_check


def main(argv):
    from nynorsk_asr.bench import results_page
    rows = [json.loads(l) for l in (ROOT/"bench"/"results.jsonl").read_text(encoding="utf-8").splitlines() if l.strip()]
    return write_or_check(ROOT/"RESULTS.md", results_page(rows), "--check" in argv, "bench/results.jsonl", "run `make results`")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/env python3
"""RESULTS.md is generated from bench/results.jsonl (`nynorsk_asr.bench.results_page`), never edited by hand.
  python .ci/render_results.py           write RESULTS.md
  python .ci/render_results.py --check   exit 1 when RESULTS.md differs from what bench/results.jsonl renders
"""
import json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv):
    from nynorsk_asr.bench import results_page
    rows = [json.loads(l) for l in (ROOT/"bench"/"results.jsonl").read_text(encoding="utf-8").splitlines() if l.strip()]
    text, page = results_page(rows), ROOT/"RESULTS.md"
    if "--check" in argv:
        if not page.is_file() or page.read_text(encoding="utf-8") != text:
            print("RESULTS.md differs from what bench/results.jsonl renders: run `make results`", file=sys.stderr)
            return 1
        print("RESULTS.md matches bench/results.jsonl")
        return 0
    page.write_text(text, encoding="utf-8")
    print(f"wrote {page.relative_to(ROOT)} ({len(rows)} result lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

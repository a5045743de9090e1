#!/usr/bin/env python3
"""The results of record, generated from bench/ (`nynorsk_asr.results`), never edited by hand:
RESULTS.md, the demo's picture bench/demo.png, the candidate presets' curves bench/curves.png, the demo summary in nbs/index.ipynb and so README.md.
  python .ci/render_results.py           write them
  python .ci/render_results.py --check   exit 1 when one is stale, or README.md quotes a figure no record holds
"""
import json, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
from render_readme import ROOT, render, write_or_check

INDEX = ROOT/"nbs"/"index.ipynb"
SUMMARY_CALL = "run_summary("  # the index notebook's cell that shows the demo's record


def summary_output(text: str) -> dict:
    return {"data": {"text/markdown": text, "text/plain": "<IPython.core.display.Markdown object>"}, "execution_count": None,
            "metadata": {}, "output_type": "execute_result"}


def main(argv):
    import matplotlib; matplotlib.use("Agg")
    from nynorsk_asr.results import (curve_records, latest_run, load_bands, plot_curves, plot_run, png_description, read_jsonl,
                                     record_digest, results_page, run_summary, unrecorded_figures)
    check = "--check" in argv
    rows, runs = read_jsonl(ROOT/"bench"/"results.jsonl"), read_jsonl(ROOT/"bench"/"runs.jsonl")
    page = results_page(rows, runs, load_bands(ROOT/"bench"/"bands.yaml"))
    status = write_or_check(ROOT/"RESULTS.md", page, check, "the records in bench/", "run `make results`")
    demo = latest_run(runs, "demo")
    summary = run_summary(demo)
    # the picture: stamped with the digest of the record it was drawn from
    png = ROOT/"bench"/"demo.png"
    if demo is not None and png_description(png) != record_digest(demo):
        if check: print(f"{png.relative_to(ROOT)} was not drawn from the latest demo record: run `make results`", file=sys.stderr); status = 1
        else: plot_run(demo, png); print(f"wrote {png.relative_to(ROOT)}")
    # the candidate presets' curves: stamped with the digest of the records they were drawn from
    curves, latest = ROOT/"bench"/"curves.png", curve_records(runs)
    if latest and png_description(curves) != record_digest(latest):
        if check: print(f"{curves.relative_to(ROOT)} was not drawn from the latest records: run `make results`", file=sys.stderr); status = 1
        else: plot_curves(runs, path=curves); print(f"wrote {curves.relative_to(ROOT)}")
    # the index notebook's summary cell, and README.md rendered from the notebook
    nb = json.loads(INDEX.read_text(encoding="utf-8"))
    cells = [c for c in nb["cells"] if c["cell_type"] == "code" and SUMMARY_CALL in "".join(c["source"])]
    if len(cells) != 1: print(f"{INDEX.relative_to(ROOT)}: {len(cells)} cells call {SUMMARY_CALL}...), one is needed", file=sys.stderr); return 1
    shown = ["".join(o.get("data", {}).get("text/markdown", "")) for o in cells[0]["outputs"]]  # as run by Jupyter, or written here
    if shown != [summary]:
        if check: print(f"{INDEX.relative_to(ROOT)}: the demo summary is not the latest record's: run `make results`", file=sys.stderr); status = 1
        else:
            cells[0]["outputs"] = [summary_output(summary)]
            INDEX.write_text(json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
            print(f"wrote the summary into {INDEX.relative_to(ROOT)}")
    readme = render(INDEX)
    status |= write_or_check(ROOT/"README.md", readme, check, "nbs/index.ipynb", "run `make results`")
    if bad := unrecorded_figures(readme, page, summary):
        print(f"README.md quotes figures that no record holds: {', '.join(bad)}: quote them from a record "
              "(bench/, RESULTS.md) or leave them to the notebooks", file=sys.stderr)
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/env python3
"""`make outputs`: run every notebook's examples and keep their outputs, so GitHub and the docs site show them.

Cells nbdev_test skips (flagged `#| slow` or `#| gpu`, `#| eval: false`) and the closing `nbdev_export()` are not
run and keep no output. A cell that writes to stderr fails the run (a red box on every rendered page): silence
expected library noise where it is noise, in the notebook. Then nbdev_clean strips what does not belong in git.
  python .ci/run_notebooks.py                 every notebook in nbs/ except train.ipynb (papermill's entry)
  python .ci/run_notebooks.py 17_card 31_results   only these
"""
import re, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT/"nbs"
WIDGET = "application/vnd.jupyter.widget-view+json"
SKIP = re.compile(r"^#\|\s*(slow|gpu)\b|^#\|\s*eval:\s*false", re.M)


def run(path: Path) -> list[str]:
    "Execute `path` in place; the stderr each cell wrote, as problems."
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(path, as_version=4)
    held = {}
    for i, c in enumerate(nb.cells):
        if c.cell_type == "code" and (SKIP.search(c.source) or "nbdev_export()" in c.source):
            held[i], c.source = c.source, ""
    client = NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(NBS)}})
    client.execute()
    problems = []
    for i, c in enumerate(nb.cells):
        if i in held: c.source, c.outputs = held[i], []
        for o in c.get("outputs", []):
            if o.get("output_type") == "stream" and o.get("name") == "stderr":
                problems.append(f"{path.name} cell {i}: stderr {o['text'][:300]!r}")
            elif WIDGET in o.get("data", {}):  # a progress bar: a rendered page shows its text, frozen at 0%
                problems.append(f"{path.name} cell {i}: a widget {''.join(o['data'].get('text/plain', ''))[:120]!r}")
    nbformat.write(nb, path)
    return problems


def main(argv):
    names = [a for a in argv if not a.startswith("-")]
    paths = [NBS/f"{n}.ipynb" for n in names] or sorted(p for p in NBS.glob("*.ipynb") if p.stem != "train")
    problems = []
    for p in paths:
        t0 = time.time()
        found = run(p)
        problems += found
        print(f"{p.name}: {time.time() - t0:.1f} s" + (f", {len(found)} cells wrote to stderr" if found else ""), flush=True)
    subprocess.run([str(Path(sys.executable).parent/"nbdev_clean"), "--fname", str(NBS)], check=True, cwd=ROOT)
    for line in problems: print(line, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

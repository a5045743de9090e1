#!/usr/bin/env python3
"""`make docs`: the notebooks, committed outputs included, rendered to a site in `_docs/` (nbdev's convention).

nbdev's own processing step turns the notebooks into pages (`show_doc` for every export, directives applied) in
`_proc/`. Then a renderer builds the site: `smalldocs` (pure Python, pinned in the Makefile; it works offline) by
default, or Quarto, which nbdev's `nbdev_docs` uses, with `--quarto` (the deploy workflow, on GitHub, where Quarto
installs). This never runs `nbdev_docs` itself, which would install Quarto with sudo, `pip install` the package with
whatever pip is first on PATH, and write README.md from the index notebook over the one `make readme` renders.
  python .ci/docs.py            render with smalldocs
  python .ci/docs.py --quarto   render with Quarto
"""
import shutil, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv):
    from nbdev.config import get_config
    from nbdev.doclinks import _build_modidx
    from nbdev.quarto import nbdev_sidebar, refresh_quarto_yml
    from nbdev.serve import proc_nbs
    t0 = time.time()
    cfg = get_config()
    refresh_quarto_yml()                           # nbs/nbdev.yml from settings.ini (untracked)
    _build_modidx()
    nbdev_sidebar.__wrapped__(path=cfg.nbs_path)   # nbs/sidebar.yml (untracked)
    proc = proc_nbs(cfg.nbs_path, n_workers=0, force=True)
    # pictures a notebook links from the repository (the README's demo picture) travel with the site
    # and a link to another file of the repository goes to it on the forge
    blob = f"{cfg.git_url}/blob/{cfg.branch}/"
    for nb in proc.glob("*.ipynb"):
        text = nb.read_text(encoding="utf-8")
        if "](../" in text: nb.write_text(text.replace("](../bench/", "](bench/").replace("](../", f"]({blob}"), encoding="utf-8")
    shutil.copytree(ROOT/"bench", proc/"bench", dirs_exist_ok=True, ignore=lambda d, names: [n for n in names if not n.endswith(".png")])
    built = proc/"_docs"
    shutil.rmtree(built, ignore_errors=True)
    cmd = ["quarto", "render", str(proc)] if "--quarto" in argv else [str(Path(sys.executable).parent/"smalldocs"), "render", str(proc), "--quiet"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    # nbdev writes each page's `output-file`, which Quarto reads and smalldocs does not need (it names pages the same way)
    warnings = [l for l in (out.stdout + out.stderr).splitlines() if l.strip() and "output-file is not read" not in l]
    if out.returncode != 0 or not (built/"index.html").is_file():
        print("\n".join(warnings[-30:]), file=sys.stderr)
        print(f"docs: {cmd[0]} failed (exit {out.returncode}); nothing written to {cfg.doc_path}", file=sys.stderr)
        return 1
    dest = ROOT/cfg.doc_path.name
    shutil.rmtree(dest, ignore_errors=True)
    shutil.move(built, dest)
    pages = sorted(p.name for p in dest.glob("*.html"))
    missing = sorted(nb.stem for nb in Path(cfg.nbs_path).glob("*.ipynb") if f"{nb.stem}.html" not in pages)
    for w in warnings: print(w)
    if missing:
        print(f"docs: no page for {', '.join(missing)}", file=sys.stderr)
        return 1
    print(f"docs: {len(pages)} pages in {dest.relative_to(ROOT)}/ ({time.time() - t0:.1f} s); open {dest.relative_to(ROOT)}/index.html")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

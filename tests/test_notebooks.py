"The notebooks as a reader meets them: each stage shows a picture or a table, no saved output is noise, docs can run them."
import ast, json, re
from pathlib import Path
import pytest

NBS = Path(__file__).parents[1] / "nbs"
STAGES = sorted(NBS.glob("[0-9][0-9]*_*.ipynb"))  # 09a_texts sits between 09 and 10
EXPORT = re.compile(r"^#\|\s*(export|exports|exporti|exec_doc)\b", re.M)
WIDGET = "application/vnd.jupyter.widget-view+json"


def cells(path: Path) -> list[dict]: return json.loads(path.read_text(encoding="utf-8"))["cells"]


def shows_picture_or_table(out: dict) -> bool:
    data = out.get("data", {})
    if "image/png" in data or "image/svg+xml" in data: return True
    if "<table" in "".join(data.get("text/html", "")): return True
    return bool(re.search(r"^\|.*\|\s*\n\|[-| :]+\|", "".join(data.get("text/markdown", "")), re.M))


def test_every_stage_notebook_commits_a_figure_or_a_table():
    assert len(STAGES) >= 30
    bare = [p.name for p in STAGES if not any(shows_picture_or_table(o) for c in cells(p) for o in c.get("outputs", []))]
    assert not bare, f"no committed figure or table (run `make outputs`): {bare}"


def test_no_saved_output_is_stderr_a_widget_or_an_error():
    noise = [f"{p.name} cell {i}: {o.get('name', o['output_type'])} {''.join(o.get('text', '') or o.get('data', {}).get('text/plain', ''))[:80]!r}"
             for p in sorted(NBS.glob("*.ipynb")) for i, c in enumerate(cells(p)) for o in c.get("outputs", [])
             if o["output_type"] == "error" or (o["output_type"] == "stream" and o["name"] == "stderr") or WIDGET in o.get("data", {})]
    assert not noise, noise


def test_the_check_finds_noise_and_tables():
    assert shows_picture_or_table({"data": {"text/markdown": "| a | b |\n|---|---|\n| 1 | 2 |"}})
    assert not shows_picture_or_table({"data": {"text/markdown": "a | b"}, "output_type": "execute_result"})
    assert shows_picture_or_table({"data": {"image/png": "iVBOR"}})


def mixes_imports(src: str) -> bool:
    "nbdev's docs run every cell that holds an import: such a cell must do nothing else (its rule, from `_do_eval`)."
    try: tree = ast.parse("\n".join("#" + l if l.lstrip().startswith(("%", "!")) else l for l in src.splitlines()))
    except SyntaxError: return False
    nodes = list(ast.walk(tree))
    return any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in nodes) and any(isinstance(n, (ast.Expr, ast.Assign)) for n in nodes)


def test_cells_that_import_do_nothing_else():
    assert mixes_imports("import tempfile\nwith tempfile.TemporaryDirectory() as d: p = save_config(cfg, d)")
    assert not mixes_imports("import tempfile\nfrom pathlib import Path")
    mixed = [f"{p.name} cell {i}" for p in sorted(NBS.glob("*.ipynb")) for i, c in enumerate(cells(p))
             if c["cell_type"] == "code" and not EXPORT.search(src := "".join(c["source"])) and "nbdev_export()" not in src
             and mixes_imports(src)]
    assert not mixed, f"imports mixed with other code (split the imports into a cell of their own): {mixed}"


MAIN_GUARD = re.compile(r'^if __name__ == "__main__"', re.M)


def test_program_guards_stay_quiet_in_a_notebook_shell():
    # nbdev_test runs every cell in an execnb shell where __name__ is "__main__"; a guard that only looked for
    # ipykernel ran the command line's main there and failed three notebooks in CI
    from execnb.shell import CaptureShell
    guards = [(p.name, "".join(c["source"])) for p in STAGES for c in cells(p)
              if c["cell_type"] == "code" and MAIN_GUARD.search("".join(c["source"]))]
    assert len(guards) >= 3, guards
    for name, src in guards:
        shell = CaptureShell()
        shell.run("import builtins, sys\ndef main(*a): raise SystemExit('main ran')\nlm_path = main")
        shell.run(src.replace("#| export\n", ""))
        assert shell.exc is None, f"{name}: the __main__ guard ran the program inside a notebook shell: {shell.exc!r}"

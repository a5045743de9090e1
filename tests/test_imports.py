"The package's modules form layers: no import cycle, no import hidden in a function to dodge one, any import order works."
import ast, random, subprocess, sys
from pathlib import Path

PKG = Path(__file__).parents[1] / "nynorsk_asr"
MODULES = sorted(p.stem for p in PKG.glob("*.py") if not p.stem.startswith("_"))
LAZY_OK = {"cli"}  # the console entry point loads a stage only when its command runs, so `--help` stays fast


def imports_of(module: str) -> dict[str, bool]:
    "Package modules that `module` imports, each mapped to True when the import sits inside a function."
    tree = ast.parse((PKG / f"{module}.py").read_text())
    out = {}
    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            names = []
            if isinstance(child, ast.ImportFrom) and child.module:
                if child.level == 1: names = [child.module.split(".")[0]]
                elif child.module.startswith("nynorsk_asr."): names = [child.module.split(".")[1]]
                elif child.module == "nynorsk_asr": names = [a.name for a in child.names]
            elif isinstance(child, ast.Import):
                names = [a.name.split(".")[1] for a in child.names if a.name.startswith("nynorsk_asr.")]
            for n in names:
                if n in MODULES: out[n] = out.get(n, True) and inner
            visit(child, inner)
    visit(tree, False)
    return out


def find_cycle(graph: dict) -> list | None:
    state, stack = {}, []
    def dfs(n):
        state[n] = "open"; stack.append(n)
        for m in graph[n]:
            if state.get(m) == "open": return stack[stack.index(m):] + [m]
            if m not in state and (c := dfs(m)): return c
        state[n] = "done"; stack.pop()
    for n in graph:
        if n not in state and (c := dfs(n)): return c
    return None


def test_cycle_finder_finds_a_planted_cycle():
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": ["b"], "b": [], "c": ["a"]}) is None


def test_import_graph_has_no_cycle():
    graph = {m: sorted(imports_of(m)) for m in MODULES}
    assert {"corpus", "ctc", "scoring", "provenance"} <= set(MODULES)
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph))}"
    # the errors and the run directory's layout (with its atomic writes) sit below everything, the shared pieces below the
    # stages: they import no stage
    assert graph["errors"] == [] and graph["layout"] == ["errors"], (graph["errors"], graph["layout"])
    for leaf in ("config", "text", "scoring", "provenance", "ctc"):
        assert set(graph[leaf]) <= {"config", "errors", "layout"}, (leaf, graph[leaf])


def test_no_function_level_imports_of_the_package():
    hidden = {m: sorted(n for n, lazy in imports_of(m).items() if lazy) for m in MODULES if m not in LAZY_OK}
    assert not any(hidden.values()), f"imports inside functions: { {m: v for m, v in hidden.items() if v} }"


def test_every_import_order_works():
    rng = random.Random(0)
    orders = [MODULES[::-1]] + [rng.sample(MODULES, len(MODULES)) for _ in range(2)]
    for order in orders:
        code = "; ".join(f"import nynorsk_asr.{m}" for m in order)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert out.returncode == 0, f"order {order}: {out.stderr[-2000:]}"


def notebook_of() -> dict[str, str]:
    "Each exported module's notebook (its `default_exp`)."
    import json, re
    out = {}
    for nb in (PKG.parent / "nbs").glob("*.ipynb"):
        for cell in json.loads(nb.read_text())["cells"]:
            if m := re.search(r"#\|\s*default_exp\s+(\S+)", "".join(cell["source"])): out[m[1]] = nb.stem
    return out


def test_notebooks_are_numbered_in_import_order():
    "Reading the notebooks top to bottom never meets a name from a later one: each imports only lower-numbered ones."
    nbs = notebook_of()
    assert set(nbs) == set(MODULES), set(MODULES) ^ set(nbs)
    late = {m: [n for n in imports_of(m) if nbs[n] >= nbs[m]] for m in MODULES}
    assert not any(late.values()), {nbs[m]: [nbs[n] for n in v] for m, v in late.items() if v}

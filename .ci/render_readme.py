#!/usr/bin/env python3
"""README.md is rendered from nbs/index.ipynb (settings.ini's readme_nb), its single source.

nbdev_readme would do it through Quarto, which cannot be installed offline; this renders the same
content without it: markdown cells as they are, code cells as fenced Python followed by their saved
outputs (markdown outputs as markdown, text fenced), cells marked `#| hide` left out and those marked
`#| echo: false` shown by their outputs alone.
  python .ci/render_readme.py           write README.md
  python .ci/render_readme.py --check   exit 1 when README.md differs from what index.ipynb renders
"""
import json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTICE = "<!-- Rendered from nbs/index.ipynb by `make readme` (and `make results`): edit the notebook, not this file. -->\n\n"


def output_text(out: dict) -> str:
    if out.get("output_type") == "stream": return "".join(out["text"])
    data = out.get("data", {})
    return "".join(data.get("text/plain", "")) + "\n" if "text/plain" in data else ""


def render(nb_path: Path) -> str:
    parts = []
    for cell in json.loads(nb_path.read_text(encoding="utf-8"))["cells"]:
        src = "".join(cell["source"]).strip("\n")
        if not src or src.startswith("#| hide") or src.startswith("#|hide"): continue
        if cell["cell_type"] == "markdown": parts.append(src.replace("](../", "](") + "\n")  # links from nbs/ to the root's
        elif cell["cell_type"] == "code":
            if not src.startswith("#| echo: false"): parts.append(f"```python\n{src}\n```\n")
            for out in cell.get("outputs", []):
                if "text/markdown" in out.get("data", {}): parts.append("".join(out["data"]["text/markdown"]).strip("\n") + "\n")
                elif text := output_text(out).rstrip("\n"): parts.append(f"```\n{text}\n```\n")
    return NOTICE + "\n".join(parts)


def write_or_check(path: Path, text: str, check: bool, source: str, fix: str) -> int:
    "Write `text` to `path`, or with `check` exit status 1 when `path` differs from it (a generated file gone stale)."
    name = path.relative_to(ROOT)
    if check:
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            print(f"{name} differs from what {source} renders: {fix}", file=sys.stderr)
            return 1
        print(f"{name} matches {source}")
        return 0
    path.write_text(text, encoding="utf-8")
    print(f"wrote {name}")
    return 0


def main(argv):
    return write_or_check(ROOT/"README.md", render(ROOT/"nbs"/"index.ipynb"), "--check" in argv, "nbs/index.ipynb",
                          "edit the notebook, then run `make readme`")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

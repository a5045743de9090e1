#!/usr/bin/env python3
"""README.md is rendered from nbs/index.ipynb (settings.ini's readme_nb), its single source.

nbdev_readme would do it through Quarto, which cannot be installed offline; this renders the same
content without it: markdown cells as they are, code cells as fenced Python followed by their saved
text outputs, cells marked `#| hide` left out.
  python .ci/render_readme.py           write README.md
  python .ci/render_readme.py --check   exit 1 when README.md differs from what index.ipynb renders
"""
import json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTICE = "<!-- Rendered from nbs/index.ipynb by `make readme`: edit the notebook, not this file. -->\n\n"


def output_text(out: dict) -> str:
    if out.get("output_type") == "stream": return "".join(out["text"])
    data = out.get("data", {})
    return "".join(data.get("text/plain", "")) + "\n" if "text/plain" in data else ""


def render(nb_path: Path) -> str:
    parts = []
    for cell in json.loads(nb_path.read_text(encoding="utf-8"))["cells"]:
        src = "".join(cell["source"]).strip("\n")
        if not src or src.startswith("#| hide") or src.startswith("#|hide"): continue
        if cell["cell_type"] == "markdown": parts.append(src + "\n")
        elif cell["cell_type"] == "code":
            parts.append(f"```python\n{src}\n```\n")
            text = "".join(output_text(o) for o in cell.get("outputs", [])).rstrip("\n")
            if text: parts.append(f"```\n{text}\n```\n")
    return NOTICE + "\n".join(parts)


def main(argv):
    text = render(ROOT/"nbs"/"index.ipynb")
    readme = ROOT/"README.md"
    if "--check" in argv:
        if readme.read_text(encoding="utf-8") != text:
            print("README.md differs from what nbs/index.ipynb renders: edit the notebook, then run `make readme`",
                  file=sys.stderr)
            return 1
        print("README.md matches nbs/index.ipynb")
        return 0
    readme.write_text(text, encoding="utf-8")
    print(f"wrote {readme.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

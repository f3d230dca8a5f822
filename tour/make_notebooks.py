"""Write tour/notebooks/*.ipynb from the chapter files tour/NN_name.py.

    python tour/make_notebooks.py           # (re)write the notebooks
    python tour/make_notebooks.py --check   # exit 1, naming each notebook that differs

A chapter is a percent-format Python file: ``# %%`` starts a code cell, ``# %% [markdown]``
a markdown cell whose lines are comments (``# `` is stripped). Each notebook gets an
"Open in Colab" badge at the top of its first markdown cell and a code cell that
installs the project where it is missing (Colab starts without it): after that first
cell, or, in the GPU chapter, before it, as the notebook's first cell. The
output is nbformat 4 JSON, deterministic, with no outputs: never edit a notebook by
hand, edit its chapter and run this script.
"""
import argparse
import json
import pathlib
import sys

# The GitHub repository the badges and the install cells point at: owner/name.
REPOSITORY = "minitransformer/minitransformer"

TOUR = pathlib.Path(__file__).resolve().parent
NOTEBOOKS = TOUR / "notebooks"
GPU_CHAPTER = "07_gpu"


def chapters():
    """The chapter files in reading order."""
    return sorted(TOUR.glob("[0-9][0-9]_*.py"))


def parse_cells(text):
    """[(kind, source text)] of a percent-format file; kind is "code" or "markdown"."""
    cells = []
    for line in text.splitlines():
        if line.startswith("# %%"):
            cells.append(("markdown" if "[markdown]" in line else "code", []))
        elif cells:
            kind, lines = cells[-1]
            if kind == "markdown":
                line = line[2:] if line.startswith("# ") else line.lstrip("#")
            lines.append(line)
    result = []
    for kind, lines in cells:
        source = "\n".join(lines).strip("\n")
        if source:
            result.append((kind, source))
    return result


def colab_url(stem):
    return (f"https://colab.research.google.com/github/{REPOSITORY}/blob/main/"
            f"tour/notebooks/{stem}.ipynb")


def badge(stem):
    return (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            f"({colab_url(stem)})")


def install_cell(stem):
    """Python that installs the project from GitHub where it is missing."""
    url = f"git+https://github.com/{REPOSITORY}"
    if stem == GPU_CHAPTER:
        return "\n".join([
            "# Install the project with its GPU extra (CuPy), as CI installs it with",
            "# pip install \".[test]\"; then ask whether a GPU answers.",
            "import importlib.util, subprocess, sys",
            "if importlib.util.find_spec(\"minitransformer\") is None or "
            "importlib.util.find_spec(\"cupy\") is None:",
            "    subprocess.check_call([sys.executable, \"-m\", \"pip\", \"install\", \"-q\",",
            f"                           \"minitransformer[gpu] @ {url}\"])",
            "import minitransformer as mt",
            "print(\"GPU available:\", mt.gpu_available())",
        ])
    return "\n".join([
        "# Install the project where it is missing (in Colab, for instance).",
        "import importlib.util, subprocess, sys",
        "if importlib.util.find_spec(\"minitransformer\") is None:",
        "    subprocess.check_call([sys.executable, \"-m\", \"pip\", \"install\", \"-q\",",
        f"                           \"minitransformer @ {url}\"])",
    ])


def _lines(source):
    lines = source.split("\n")
    return [line + "\n" for line in lines[:-1]] + [lines[-1]]


def _cell(kind, source):
    cell = {"cell_type": kind, "metadata": {}, "source": _lines(source)}
    if kind == "code":
        cell["execution_count"] = None
        cell["outputs"] = []
    return cell


def notebook(chapter):
    """The notebook of a chapter file, as JSON text."""
    stem = chapter.stem
    cells = parse_cells(chapter.read_text(encoding="utf-8"))
    first = next(i for i, (kind, _) in enumerate(cells) if kind == "markdown")
    cells[first] = ("markdown", badge(stem) + "\n\n" + cells[first][1])
    # The GPU notebook starts with its install cell (CuPy must be there before anything
    # else runs); the others install right after their opening cell.
    cells.insert(0 if stem == GPU_CHAPTER else first + 1, ("code", install_cell(stem)))
    document = {
        "cells": [_cell(kind, source) for kind, source in cells],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 4,
    }
    return json.dumps(document, indent=1, ensure_ascii=False) + "\n"


def expected():
    """{notebook path: the JSON text this script writes there}."""
    return {NOTEBOOKS / f"{chapter.stem}.ipynb": notebook(chapter) for chapter in chapters()}


def differences():
    """Paths of notebooks that differ from what would be written, missing or stale."""
    wanted = expected()
    bad = [path for path, text in wanted.items()
           if not path.exists() or path.read_text(encoding="utf-8") != text]
    bad += [path for path in sorted(NOTEBOOKS.glob("*.ipynb")) if path not in wanted]
    return bad


def _shown(path):
    """``path`` relative to the repository where it lies inside it."""
    try:
        return path.relative_to(TOUR.parent)
    except ValueError:
        return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 where a notebook differs from its chapter")
    args = parser.parse_args(argv)
    if args.check:
        bad = differences()
        for path in bad:
            print(f"{_shown(path)}: differs from what tour/make_notebooks.py "
                  f"writes (run python tour/make_notebooks.py)", file=sys.stderr)
        return 1 if bad else 0
    NOTEBOOKS.mkdir(exist_ok=True)
    wanted = expected()
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        if path not in wanted:
            path.unlink()
    for path, text in wanted.items():
        path.write_text(text, encoding="utf-8")
        print(f"wrote {_shown(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

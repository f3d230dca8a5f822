"""The prose is true: its Python examples run, and its links lead somewhere.

Python examples. Every ```python block of README.md and docs/*.md runs, with the
repository as the current directory. The blocks of one file run in order in one fresh
interpreter and share their names, as a reader typing them one after the other into the
same session would: a later block may use what an earlier one defined. Each block's
printed output is kept apart, so that a block may say what it prints:

* a line ending in ``# -> EXPECTED`` or a line ``# prints: EXPECTED`` means the block's
  output must contain EXPECTED;
* a block right after an HTML comment ``<!-- no-run: REASON -->`` is not run (it needs a
  GPU, a download, an hour ...); the REASON must be given.

Links. Every relative link, ``[text](path)`` and ``![alt](path)``, of README.md, docs/*.md,
tour/*.md and examples/*.md must point to a file or folder that exists (web addresses and
anchors within a page are not checked).
"""
import glob
import json
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_FILES = ["README.md", "docs/*.md"]
LINK_FILES = ["README.md", "docs/*.md", "tour/*.md", "examples/*.md"]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)
NO_RUN = re.compile(r"<!--\s*no-run:(.*?)-->\s*$", re.S)
EXPECTED = re.compile(r"#\s*->\s*(.+?)\s*$|^\s*#\s*prints:\s*(.+?)\s*$", re.M)
MARKER = "=====8<===== block boundary ====="
TIMEOUT_S = 600


def markdown_files(patterns):
    found = []
    for pattern in patterns:
        found += sorted(glob.glob(os.path.join(ROOT, pattern)))
    return [os.path.relpath(path, ROOT) for path in found]


def read(relative):
    with open(os.path.join(ROOT, relative), encoding="utf-8") as f:
        return f.read()


def python_blocks(text):
    """[(line number, code, skip reason or None)] for every ```python block of ``text``."""
    blocks = []
    for fence in FENCE.finditer(text):
        if fence[1] != "python":
            continue
        before = text[:fence.start()].rstrip()
        last_line = before.splitlines()[-1] if before else ""
        no_run = NO_RUN.search(last_line)
        line = text.count("\n", 0, fence.start()) + 2      # the first line of code
        blocks.append((line, fence[2], no_run[1].strip() if no_run else None))
    return blocks


def expected_outputs(code):
    return [m[1] or m[2] for m in EXPECTED.finditer(code)]


# The driver runs in the fresh interpreter: it executes each block in one shared namespace
# and prints a marker before each, so that every block's output can be told apart.
DRIVER = f"""
import json, sys
blocks = json.load(sys.stdin)
namespace = {{"__name__": "__main__"}}
for name, code in blocks:
    print({MARKER!r}, flush=True)
    exec(compile(code, name, "exec"), namespace)
    sys.stdout.flush()
"""


def run_blocks(relative, blocks):
    """The printed output of each block, in order (a failure raises with its output)."""
    payload = json.dumps([(f"{relative}, block at line {line}", code) for line, code in blocks])
    done = subprocess.run([sys.executable, "-c", DRIVER], input=payload, cwd=ROOT,
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, (f"{relative}: a block failed\n--- stdout\n{done.stdout}"
                                  f"\n--- stderr\n{done.stderr}")
    return done.stdout.split(MARKER + "\n")[1:]


def files_with_python():
    return [f for f in markdown_files(RUN_FILES) if python_blocks(read(f))] or \
        [pytest.param(None, marks=pytest.mark.skip(reason="no ```python block to run"))]


@pytest.mark.parametrize("relative", files_with_python())
def test_python_blocks_run_and_print_what_they_say(relative):
    blocks = python_blocks(read(relative))
    for line, _, reason in blocks:
        assert reason != "", f"{relative}:{line}: <!-- no-run: --> needs a reason"
    to_run = [(line, code) for line, code, reason in blocks if reason is None]
    if not to_run:
        pytest.skip(f"{relative}: every block is marked no-run")
    outputs = run_blocks(relative, to_run)
    assert len(outputs) == len(to_run)
    for (line, code), output in zip(to_run, outputs):
        for expected in expected_outputs(code):
            assert expected in output, (f"{relative}, block at line {line}: expected "
                                        f"{expected!r} in its output, got:\n{output}")


# ---------------------------------------------------------------- links
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def without_code(text):
    """``text`` with fenced blocks and inline code blanked: a link in code is not a link."""
    text = FENCE.sub(lambda m: "\n" * m[0].count("\n"), text)
    return re.sub(r"`[^`\n]*`", "", text)


def relative_links(text):
    for match in LINK.finditer(without_code(text)):
        target = match[1]
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("#"):
            continue                                 # a web address, or an anchor here
        yield target.split("#", 1)[0]


@pytest.mark.parametrize("relative", markdown_files(LINK_FILES))
def test_relative_links_point_to_existing_files(relative):
    folder = os.path.dirname(os.path.join(ROOT, relative))
    broken = [target for target in relative_links(read(relative))
              if not os.path.exists(os.path.normpath(os.path.join(folder, target)))]
    assert not broken, f"{relative}: links to missing files: {broken}"


# ---------------------------------------------------------------- the checker itself
def test_blocks_and_their_markers_are_found():
    text = ("x\n\n```python\nprint(1)  # -> 1\n```\n\n<!-- no-run: needs a GPU -->\n"
            "```python\nimport cupy\n```\n\n```bash\nls\n```\n")
    blocks = python_blocks(text)
    assert [(line, reason) for line, _, reason in blocks] == [(4, None), (9, "needs a GPU")]
    assert expected_outputs(blocks[0][1]) == ["1"]
    assert expected_outputs("# prints: (3, 2)\n") == ["(3, 2)"]
    assert list(relative_links("[a](b.md#x) ![c](d.png) [w](https://e.org) `[n](no.md)`")) \
        == ["b.md", "d.png"]


# ---------------------------------------------------------------- speaking about the software
# Words that speak of how the project was made rather than of the software (its history
# lives in git), and the folder beside the repository that no user has.
HISTORY = re.compile(r"this round|next session|lent|\(was [0-9]|audit|\.\./shared", re.I)
HISTORY_FILES = ["README.md", "docs/*.md", "tour/*.md", "tour/*.py", "tour/*/*.py",
                 "minitransformer/*.py", "minitransformer/*/*.py", "examples/*"]


@pytest.mark.parametrize("relative", markdown_files(HISTORY_FILES))
def test_the_text_speaks_about_the_software(relative):
    found = [f"{relative}:{number}: {line.strip()}"
             for number, line in enumerate(read(relative).splitlines(), 1)
             if HISTORY.search(line)]
    assert not found, "words about the project's history:\n" + "\n".join(found)


def test_the_history_words_are_recognised():
    assert HISTORY.search("measured before this round") and HISTORY.search("(was 21)")
    assert not HISTORY.search("the critical path of n sequential steps")

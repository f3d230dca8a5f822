"""The generated results pages: they match the committed measurements, they notice when a
measurement changes, and the numbers in their tables are the files' numbers."""
import csv
import os
import re
import shutil

import pytest

from minitransformer import docs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def copy_of_the_tree(tmp_path, readme_text=None):
    """bench/results, docs and (optionally) a README in a fresh folder: a root to edit."""
    shutil.copytree(os.path.join(ROOT, "bench", "results"), tmp_path / "bench" / "results")
    shutil.copytree(os.path.join(ROOT, "docs"), tmp_path / "docs")
    if readme_text is not None:
        (tmp_path / "README.md").write_text(readme_text, encoding="utf-8")
    return tmp_path


def markdown_table_after(text, heading_line):
    """The rows (lists of cells) of the first table whose header row is ``heading_line``."""
    lines = text.splitlines()
    start = lines.index(heading_line) + 2           # skip the header and the |---| row
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_check_passes_on_the_committed_tree(capsys):
    assert docs.main(["--check"]) == 0, capsys.readouterr().err


def test_check_fails_naming_the_file_when_a_csv_is_edited(tmp_path, capsys):
    root = copy_of_the_tree(tmp_path)
    assert docs.main(["--check", "--root", str(root)]) == 0
    table1 = root / "bench" / "results" / "table1.csv"
    text = table1.read_text(encoding="utf-8")
    assert "rnn,512,64,8486976," in text
    table1.write_text(text.replace("rnn,512,64,8486976,", "rnn,512,64,8486977,"), encoding="utf-8")
    capsys.readouterr()
    assert docs.main(["--check", "--root", str(root)]) == 1
    err = capsys.readouterr().err
    found = re.search(r"(docs/results\.md):(\d+): expected '(.*)', committed '(.*)'", err)
    assert found, err
    assert "8,486,977" in found[3] and "8,486,976" in found[4]
    # the line number points at the line that differs in the committed file
    committed = (root / "docs" / "results.md").read_text(encoding="utf-8").splitlines()
    assert committed[int(found[2]) - 1] == found[4]


def test_the_command_line_runs_the_check_and_fails_with_it(tmp_path, capsys):
    from minitransformer import cli
    cli.main(["docs", "--check"])                   # returns: the committed tree matches
    root = copy_of_the_tree(tmp_path)
    (root / "docs" / "results.md").write_text("# Results\n", encoding="utf-8")
    with pytest.raises(SystemExit) as stopped:
        cli.main(["docs", "--check", "--root", str(root)])
    assert stopped.value.code == 1
    assert "docs/results.md" in capsys.readouterr().err


def test_check_names_a_missing_page(tmp_path, capsys):
    root = copy_of_the_tree(tmp_path)
    (root / "docs" / "results.md").unlink()
    assert docs.main(["--check", "--root", str(root)]) == 1
    assert "docs/results.md: missing" in capsys.readouterr().err


def test_the_readme_block_is_replaced_between_the_markers_only(tmp_path, capsys):
    readme = f"# title\n\nabove\n\n{docs.BEGIN}\nstale text\n{docs.END}\n\nbelow\n"
    root = copy_of_the_tree(tmp_path, readme)
    assert docs.main(["--root", str(root)]) == 0
    text = (root / "README.md").read_text(encoding="utf-8")
    assert text.startswith("# title\n\nabove\n\n" + docs.BEGIN)
    assert text.endswith(docs.END + "\n\nbelow\n")
    assert "stale text" not in text and "docs/results.md" in text
    assert docs.main(["--check", "--root", str(root)]) == 0
    # an edit inside the block is noticed, and the README is named
    (root / "README.md").write_text(text.replace("| result |", "| results |"), encoding="utf-8")
    capsys.readouterr()
    assert docs.main(["--check", "--root", str(root)]) == 1
    assert "README.md:" in capsys.readouterr().err


def test_a_readme_without_markers_is_left_alone(tmp_path):
    root = copy_of_the_tree(tmp_path, "# no markers here\n")
    assert docs.main(["--root", str(root)]) == 0
    assert (root / "README.md").read_text(encoding="utf-8") == "# no markers here\n"


def read_csv(relative):
    with open(os.path.join(ROOT, relative), encoding="utf-8") as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def test_the_table1_rows_are_the_csv_rows():
    page = docs.results_page(ROOT)
    shown = markdown_table_after(
        page, "| layer | n | d | FLOPs | sequential ops | max path length |")
    expected = read_csv("bench/results/table1.csv")
    assert len(shown) == len(expected)
    for cells, row in zip(shown, expected):
        assert cells == [row["layer"], row["n"], row["d"], f"{int(row['flops']):,}",
                         row["sequential_ops"], row["max_path_length"]]


def test_the_multi30k_test_bleu_is_the_csv_and_logs_bleu():
    page = docs.results_page(ROOT)
    rows = read_csv("bench/results/cpu/real_translation.csv")
    for row in rows:
        shown = f"**{float(row['test_bleu_lowercase']):.2f}** ({float(row['test_bleu']):.2f})"
        assert shown in page
    log = docs.LogFile(ROOT, "bench/results/cpu/multi30k_transformer_two_ranks.log")
    assert f"**{log.test_bleu()['lc']:.2f}**" in page


def test_the_mirror_table_reports_the_end_of_the_budget_and_the_best():
    summary = docs.ResultFile(ROOT, "bench/results/cpu/mirror_n128/time_to_bleu.csv")
    curves = docs.ResultFile(ROOT, "bench/results/cpu/mirror_n128/time_to_bleu_curves.csv")
    [row] = docs.mirror_rows(summary, curves)
    accuracies = [float(r["token_accuracy"]) for r in curves.rows]
    assert row[3].startswith(docs.percent(accuracies[-1]))
    assert row[4].startswith(docs.percent(max(accuracies)))
    assert row[5].startswith("missed by")


@pytest.mark.parametrize("forbidden", ["this round", "before the change", "was lent"])
def test_the_generated_pages_speak_to_users(forbidden):
    page = docs.results_page(ROOT)
    assert forbidden not in page


def test_the_generated_pages_point_only_into_the_repository():
    """A path leaving docs/ goes to the committed results, never to a folder beside the
    repository that only its development machines have."""
    page = docs.results_page(ROOT)
    outside = [page[m.start():m.start() + 40] for m in re.finditer(r"\.\./", page)
               if not page.startswith("../bench/results/", m.start())]
    assert not outside, outside

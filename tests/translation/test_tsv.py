"""TSV loader: the Tatoeba/Anki format, length filter, malformed lines, file errors."""
import os
import warnings

import pytest

from minitransformer.translation import tsv
from minitransformer.translation.tsv import load_tsv, load_tsv_corpus, read_tsv

GOOD = ("Go.\tVa !\tCC-BY 2.0 (France) Attribution: tatoeba.org #2877272 (CM)\n"
        "Hi.\tSalut !\n"
        "I'm hungry.\tJ'ai faim.\tattribution\n"
        "He is a very tall and very old man.\tC'est un homme très grand et très vieux.\n")


def write(tmp_path, text, name="pairs.tsv"):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def test_reads_pairs_and_ignores_attribution(tmp_path):
    pairs = load_tsv(write(tmp_path, GOOD))
    assert pairs[:3] == [("Go.", "Va !"), ("Hi.", "Salut !"), ("I'm hungry.", "J'ai faim.")]
    assert len(pairs) == 4


def test_reverse_swaps_columns_and_crlf_bom_blank_lines_are_fine(tmp_path):
    text = b"\xef\xbb\xbf" + GOOD.replace("\n", "\r\n").encode() + b"\r\n\r\n"
    pairs = load_tsv(write(tmp_path, text), reverse=True)
    assert pairs[0] == ("Va !", "Go.") and len(pairs) == 4


def test_max_tokens_filters_long_pairs(tmp_path):
    data = read_tsv(write(tmp_path, GOOD), max_tokens=5)
    assert len(data.pairs) == 3 and data.too_long == 1


def test_malformed_lines_skipped_with_warning_naming_lines(tmp_path):
    text = GOOD + "no tab here\n" + "\tempty source\n" + "empty target\t \n" + "Ok.\tD'accord.\n"
    path = write(tmp_path, text)
    with pytest.warns(UserWarning, match=r"skipped 3 malformed line\(s\) \(lines 5, 6, 7\)"):
        pairs = load_tsv(path)
    assert pairs[-1] == ("Ok.", "D'accord.") and len(pairs) == 5
    assert read_tsv(path).malformed == [5, 6, 7]


def test_warning_lists_only_the_first_line_numbers(tmp_path):
    path = write(tmp_path, GOOD * 3 + "bad\n" * 8)
    with pytest.warns(UserWarning, match=r"skipped 8 .*lines 13, 14, 15, 16, 17, \.\.\.\)"):
        load_tsv(path)


def test_a_mostly_malformed_file_is_an_error_not_a_warning(tmp_path):
    path = write(tmp_path, GOOD + "bad\n" * 5)
    with pytest.raises(ValueError, match=rf"{os.fspath(path)}: 5 of 9 lines are not "
                                         r"source<TAB>target pairs \(lines 5, 6, 7, 8, 9, "):
        load_tsv(path)


def test_malformed_line_raises_with_file_and_line(tmp_path):
    path = write(tmp_path, GOOD + "no tab here\n")
    with pytest.raises(ValueError, match=rf"{os.fspath(path)}, line 5: malformed"):
        load_tsv(path, on_error="raise")


def test_bad_on_error_value(tmp_path):
    with pytest.raises(ValueError, match="on_error"):
        load_tsv(write(tmp_path, GOOD), on_error="ignore")


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nope.tsv"
    with pytest.raises(FileNotFoundError, match="nope.tsv"):
        load_tsv(path)
    with pytest.raises(IsADirectoryError, match=str(tmp_path)):
        load_tsv(tmp_path)


def test_unreadable_file_names_the_path(tmp_path, monkeypatch):
    path = write(tmp_path, GOOD)

    def refuse(file, *args, **kwargs):  # as open() does on a file without read permission
        raise PermissionError(13, "Permission denied", file)

    # chmod cannot make a file unreadable for root (tests may run as root): fake open()
    monkeypatch.setattr(tsv, "open", refuse, raising=False)
    with pytest.raises(PermissionError, match=r"cannot read parallel text file.*pairs.tsv"):
        load_tsv(path)


@pytest.mark.parametrize("text", ["", "\n\n  \n"])
def test_empty_file_is_an_error(tmp_path, text):
    with pytest.raises(ValueError, match=r"empty: .*pairs.tsv"):
        load_tsv(write(tmp_path, text))


def test_no_valid_pairs_is_an_error(tmp_path):
    path = write(tmp_path, "just text\nmore text\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=r"pairs.tsv: 2 of 2 lines are not source<TAB>target"):
            load_tsv(path)
    with pytest.raises(ValueError, match="no valid sentence pairs"):
        load_tsv(write(tmp_path, GOOD, "long.tsv"), max_tokens=1)


def test_invalid_utf8_names_path_and_line(tmp_path):
    path = write(tmp_path, GOOD.encode() + b"Caf\xe9.\tCaf\xe9.\n")
    with pytest.raises(ValueError, match=r"pairs.tsv, line 5: not valid UTF-8"):
        load_tsv(path)


def test_corpus_splits_keep_all_translations_of_a_source_together(tmp_path):
    lines = [f"S{i}.\tT{i}a.\n" + f"S{i}.\tT{i}b.\n" for i in range(50)]
    corpus = load_tsv_corpus(write(tmp_path, "".join(lines)), splits=(0.6, 0.2, 0.2), seed=1)
    assert [len(corpus[k]) for k in ("train", "valid", "test")] == [60, 20, 20]
    sources = {k: {s for s, _ in v} for k, v in corpus.items()}
    assert not sources["train"] & (sources["valid"] | sources["test"])
    assert not sources["valid"] & sources["test"]

"""split_pairs: fractions, grouping by source, duplicates, determinism."""
import pytest

from minitransformer.translation.splits import split_pairs


def test_fractions_and_determinism():
    pairs = [(f"s{i}", f"t{i}") for i in range(100)]
    parts = split_pairs(pairs, splits=(0.7, 0.2, 0.1), seed=3)
    assert [len(parts[k]) for k in ("train", "valid", "test")] == [70, 20, 10]
    assert sorted(sum(parts.values(), [])) == sorted(pairs)
    assert split_pairs(pairs, splits=(0.7, 0.2, 0.1), seed=3) == parts
    assert split_pairs(pairs, splits=(0.7, 0.2, 0.1), seed=4) != parts


def test_duplicates_dropped_and_sources_grouped():
    pairs = [("a", "x"), ("a", "x"), ("a", "y"), ("b", "z")]
    parts = split_pairs(pairs, splits=(0.5, 0.5, 0.0))
    everything = sum(parts.values(), [])
    assert sorted(everything) == [("a", "x"), ("a", "y"), ("b", "z")]
    assert parts["test"] == []
    for part in parts.values():  # both translations of "a" in one split
        assert {t for s, t in part if s == "a"} in (set(), {"x", "y"})


@pytest.mark.parametrize("splits", [(0.5, 0.5), (0.8, 0.3, 0.1), (1.2, -0.1, -0.1)])
def test_bad_splits(splits):
    with pytest.raises(ValueError):
        split_pairs([("a", "b")], splits=splits)

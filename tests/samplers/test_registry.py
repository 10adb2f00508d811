"""Registry: the one behaviour of every extensible table."""

from dataclasses import dataclass

import pytest

from optuna_mix.samplers.registry import Registry


@dataclass(frozen=True)
class Entry:
    name: str


def test_entries_keep_their_order_and_new_names_are_added():
    table = Registry("thing", [Entry("b"), Entry("a")])
    assert list(table) == ["b", "a"]
    assert table.add(Entry("c")) == Entry("c") and list(table) == ["b", "a", "c"]
    assert table.lookup("a") == Entry("a")


def test_a_name_in_use_and_an_unknown_name_are_one_line_errors():
    table = Registry("thing", [Entry("a"), Entry("b")])
    with pytest.raises(ValueError, match=r"^thing 'a' exists already$"):
        table.add(Entry("a"))
    with pytest.raises(ValueError, match=r"^unknown thing 'z' \(choose from a, b\)$"):
        table.lookup("z")

"""Triangulation, junction-tree structure and model size."""

import itertools

import pytest

from dpsynth.pgm import Domain, JunctionTree, junction_tree_size, maximal_cliques


def running_intersection(tree: JunctionTree) -> bool:
    """Every attribute's cliques form a connected subtree."""
    for a in tree.domain.attrs:
        holders = {i for i, cl in enumerate(tree.maximal) if a in cl}
        # the holders are connected iff exactly one of them has its parent outside the set
        tops = [i for i in holders if tree.parent[i] is None or tree.parent[i] not in holders]
        if len(tops) != 1:
            return False
    return True


def test_size_of_a_tree_is_sum_of_its_pair_tables():
    d = Domain(["a", "b", "c", "d"], [2, 3, 4, 5])
    # chain a-b-c-d: cliques ab, bc, cd are already maximal -> 6 + 12 + 20 cells
    assert junction_tree_size(d, [("a", "b"), ("b", "c"), ("c", "d")]) == 6 + 12 + 20


def test_uncovered_attributes_become_singletons():
    d = Domain(["a", "b", "c"], [2, 3, 7])
    assert junction_tree_size(d, [("a", "b")]) == 6 + 7
    assert sorted(maximal_cliques(d, [("a", "b")])) == [("a", "b"), ("c",)]


def test_four_cycle_is_triangulated_with_the_cheaper_chord():
    d = Domain(["a", "b", "c", "d"], [2, 3, 4, 5])
    cycle = [("a", "b"), ("b", "c"), ("c", "d"), ("a", "d")]
    # chord a-c: abc (24) + acd (40) = 64 cells; chord b-d: abd (30) + bcd (60) = 90
    assert junction_tree_size(d, cycle) == 64
    assert sorted(maximal_cliques(d, cycle)) == [("a", "b", "c"), ("a", "c", "d")]


def test_contained_cliques_do_not_add_cells():
    d = Domain(["a", "b", "c"], [2, 3, 4])
    assert junction_tree_size(d, [("a", "b", "c"), ("a", "b"), ("c",)]) == 24


@pytest.mark.parametrize("cliques", [
    [("a", "b"), ("b", "c"), ("c", "d"), ("d", "e"), ("e", "a")],
    [("a", "b", "c"), ("c", "d"), ("d", "e"), ("b", "e"), ("a", "f")],
    [("a",), ("f",)],
    list(itertools.combinations("abcdef", 2))[:9],
])
def test_tree_has_running_intersection_and_covers_all_cliques(cliques):
    d = Domain(list("abcdef"), [2, 3, 2, 3, 2, 4])
    tree = JunctionTree(d, cliques)
    assert len(tree.edges) == len(tree.maximal) - 1
    assert running_intersection(tree)
    for cl in tree.cliques:
        assert set(cl) <= set(tree.maximal[tree.assignment[cl]])
    assert set().union(*map(set, tree.maximal)) == set(d.attrs)


def test_unknown_attribute_is_named():
    d = Domain(["a", "b"], [2, 2])
    with pytest.raises(ValueError, match="'zz'"):
        junction_tree_size(d, [("a", "zz")])

"""Triangulation and junction trees for a set of cliques over a domain.

The interaction graph links two attributes when some clique holds both.  We
triangulate it by greedy variable elimination (min-fill and min-weight orders
are both tried; the one with fewer junction-tree cells wins), keep the maximal
cliques of the chordal graph, and join them into a tree by a maximum spanning
tree on separator sizes (number of shared attributes), which gives the running
intersection property.  Disconnected components are joined by empty separators
so that there is always a single tree (messages over an empty separator are
scalars).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence

from .domain import Domain

Clique = tuple[str, ...]


def _normalise_cliques(domain: Domain, cliques: Iterable[Iterable[str]]) -> list[Clique]:
    out: list[Clique] = []
    seen = set()
    for cl in cliques:
        cl = domain.canonical(cl)
        if cl not in seen:
            seen.add(cl)
            out.append(cl)
    return out


@functools.lru_cache(maxsize=1 << 16)
def _bits(mask: int) -> tuple[int, ...]:
    """Positions of the set bits of ``mask``, lowest first."""
    out = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return tuple(out)


def _eliminate(domain: Domain, adjacency: dict[str, set[str]], rule: str) -> list[frozenset]:
    """Greedy elimination; returns the cliques formed (variable + its neighbours).

    Neighbourhoods are bitmasks over attribute positions (AIM sizes thousands of
    hypothetical trees per round, so this loop is hot); ties break on position.
    """
    attrs = domain.attrs
    index = {a: i for i, a in enumerate(attrs)}
    sizes = [domain[a] for a in attrs]
    adj = {index[a]: sum(1 << index[u] for u in nbrs) for a, nbrs in adjacency.items()}
    formed: list[frozenset] = []

    bits = _bits
    def fill(v: int) -> int:
        nb = adj[v]
        # pairs of neighbours not yet adjacent, each counted from both ends
        return sum((nb & ~adj[u] & ~(1 << u)).bit_count() for u in bits(nb)) // 2

    def weight(v: int) -> int:
        return sizes[v] * math.prod(sizes[u] for u in bits(adj[v]))

    while adj:
        if rule == "min_fill":
            v = min(adj, key=lambda a: (fill(a), weight(a), a))
        else:
            v = min(adj, key=lambda a: (weight(a), fill(a), a))
        nb = adj.pop(v)
        members = bits(nb)
        formed.append(frozenset(attrs[u] for u in members) | {attrs[v]})
        for u in members:
            adj[u] = (adj[u] | nb) & ~(1 << u) & ~(1 << v)
    return formed


def _maximal(cliques: Iterable[frozenset]) -> list[frozenset]:
    cliques = sorted(set(cliques), key=len, reverse=True)
    kept: list[frozenset] = []
    for cl in cliques:
        if not any(cl <= k for k in kept):
            kept.append(cl)
    return kept


def maximal_cliques(domain: Domain, cliques: Iterable[Iterable[str]]) -> list[Clique]:
    """Maximal cliques of a triangulation of the cliques' interaction graph.

    Every attribute of ``domain`` is covered (attributes in no clique become
    singleton cliques).  Returned in domain attribute order, deterministically.
    """
    cliques = _normalise_cliques(domain, cliques)
    adjacency: dict[str, set[str]] = {a: set() for a in domain.attrs}
    for cl in cliques:
        for a in cl:
            adjacency[a] |= set(cl) - {a}
    best = None
    for rule in ("min_fill", "min_weight"):
        found = _maximal(_eliminate(domain, adjacency, rule))
        cells = sum(math.prod(domain[a] for a in cl) for cl in found)
        if best is None or cells < best[0]:
            best = (cells, found)
    result = [domain.canonical(cl) for cl in best[1]]
    position = {a: i for i, a in enumerate(domain.attrs)}
    result.sort(key=lambda cl: (-domain.size(cl), [position[a] for a in cl]))
    return result


def junction_tree_size(domain: Domain, cliques: Iterable[Iterable[str]]) -> int:
    """Number of cells (table entries) of the junction tree's clique potentials.

    This is the model size that AIM caps: the sum over maximal cliques of the
    product of their attributes' domain sizes.
    """
    return sum(domain.size(cl) for cl in maximal_cliques(domain, cliques))


class JunctionTree:
    """A junction tree over the maximal cliques of a triangulated clique set.

    Attributes:
        domain: the model's domain.
        cliques: the input cliques (canonical order, duplicates removed).
        maximal: the maximal cliques (the tree's nodes), canonical attribute order.
        edges: tree edges ``(i, j)`` between indices of ``maximal``.
        root: index of the root node (the largest clique).
        parent: ``parent[i]`` is the parent node of ``i`` (``None`` for the root).
        order: nodes in top-down (root first, breadth first) order.
        separator: ``separator[i]`` = attributes shared by ``i`` and its parent.
        assignment: input clique -> index of the smallest maximal clique containing it.
    """

    def __init__(self, domain: Domain, cliques: Iterable[Iterable[str]]):
        self.domain = domain
        self.cliques: list[Clique] = _normalise_cliques(domain, cliques)
        self.maximal: list[Clique] = maximal_cliques(domain, self.cliques)
        self.edges = self._spanning_tree()
        self.root = 0
        self.parent, self.order = self._orient()
        self.separator: list[Clique] = [
            () if p is None else tuple(a for a in self.maximal[i] if a in self.maximal[p])
            for i, p in enumerate(self.parent)
        ]
        self.assignment = {cl: self.containing(cl) for cl in self.cliques}

    def _spanning_tree(self) -> list[tuple[int, int]]:
        k = len(self.maximal)
        sets = [set(cl) for cl in self.maximal]
        pairs = sorted(
            ((len(sets[i] & sets[j]), i, j) for i in range(k) for j in range(i + 1, k)),
            key=lambda t: (-t[0], t[1], t[2]),
        )
        group = list(range(k))

        def find(x: int) -> int:
            while group[x] != x:
                group[x] = group[group[x]]
                x = group[x]
            return x

        edges = []
        for _, i, j in pairs:
            ri, rj = find(i), find(j)
            if ri != rj:
                group[ri] = rj
                edges.append((i, j))
        return edges

    def _orient(self) -> tuple[list[int | None], list[int]]:
        k = len(self.maximal)
        neighbours: list[list[int]] = [[] for _ in range(k)]
        for i, j in self.edges:
            neighbours[i].append(j)
            neighbours[j].append(i)
        parent: list[int | None] = [None] * k
        order = [self.root]
        seen = {self.root}
        for node in order:  # grows while iterating: breadth-first
            for nb in sorted(neighbours[node]):
                if nb not in seen:
                    seen.add(nb)
                    parent[nb] = node
                    order.append(nb)
        return parent, order

    def containing(self, attrs: Iterable[str]) -> int | None:
        """Index of the smallest maximal clique holding all ``attrs`` (None if none does)."""
        need = set(attrs)
        best = None
        for i, cl in enumerate(self.maximal):
            if need <= set(cl) and (best is None or self.domain.size(cl) < self.domain.size(self.maximal[best])):
                best = i
        return best

    def size(self) -> int:
        """Cells of the junction tree (see :func:`junction_tree_size`)."""
        return sum(self.domain.size(cl) for cl in self.maximal)

    def __repr__(self) -> str:
        return f"JunctionTree(maximal={self.maximal}, edges={self.edges})"

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


def _eliminate(sizes: tuple[int, ...], adjacency: tuple[int, ...], rule: str) -> list[int]:
    """Greedy elimination; returns the cliques formed (variable + its neighbours) as bitmasks.

    ``adjacency[i]`` is the bitmask of attribute ``i``'s neighbours.  The next variable
    minimises (fill, weight, position) under "min_fill" and (weight, fill, position)
    under "min_weight"; the second key is computed only for the ties of the first (AIM
    sizes thousands of hypothetical trees per run, so this loop is hot).
    """
    adj = list(adjacency)
    alive = (1 << len(adj)) - 1
    bits = _bits
    weights: dict[int, int] = {}

    def fill(v: int) -> int:
        nb = adj[v]
        # pairs of neighbours not yet adjacent, each counted from both ends; u's own bit
        # is in nb & ~adj[u] (no self-loops), hence the - len(members)
        members = bits(nb)
        return (sum((nb & ~adj[u]).bit_count() for u in members) - len(members)) // 2

    def weight(v: int) -> int:
        mask = adj[v] | (1 << v)
        w = weights.get(mask)
        if w is None:
            w = math.prod(sizes[u] for u in bits(mask))
            weights[mask] = w
        return w

    first, second = (fill, weight) if rule == "min_fill" else (weight, fill)
    formed: list[int] = []
    while alive:
        live = bits(alive)
        keys = [first(a) for a in live]
        low = min(keys)
        ties = [a for a, k in zip(live, keys) if k == low]
        v = ties[0] if len(ties) == 1 else min(ties, key=lambda a: (second(a), a))
        nb = adj[v]
        alive &= ~(1 << v)
        formed.append(nb | (1 << v))
        for u in bits(nb):
            adj[u] = (adj[u] | nb) & ~(1 << u) & ~(1 << v)
        adj[v] = 0
    return formed


def _maximal(cliques: Iterable[int]) -> list[int]:
    """The masks not contained in another (duplicates once)."""
    cliques = sorted(set(cliques), key=lambda m: m.bit_count(), reverse=True)
    kept: list[int] = []
    for cl in cliques:
        if not any(cl & k == cl for k in kept):
            kept.append(cl)
    return kept


@functools.lru_cache(maxsize=1 << 14)
def _triangulate(sizes: tuple[int, ...], adjacency: tuple[int, ...]) -> tuple[int, tuple[int, ...]]:
    """(cells, maximal clique masks) of the better of the min-fill and min-weight
    triangulations of the interaction graph ``adjacency`` (bitmasks over positions).

    Cached on the graph: AIM asks for the tree of [model cliques + one candidate] for every
    candidate in every round, and many candidates add the same edges (or none)."""
    best = None
    for rule in ("min_fill", "min_weight"):
        found = _maximal(_eliminate(sizes, adjacency, rule))
        cells = sum(math.prod(sizes[u] for u in _bits(m)) for m in found)
        if best is None or cells < best[0]:
            best = (cells, tuple(found))
    return best


def _graph(domain: Domain, cliques: Iterable[Iterable[str]]) -> tuple[int, ...]:
    """The cliques' interaction graph as neighbour bitmasks over the domain's positions."""
    index = {a: i for i, a in enumerate(domain.attrs)}
    adj = [0] * len(domain.attrs)
    for cl in cliques:
        mask = 0
        for a in cl:
            if a not in index:
                domain.check(cl, "clique")  # raises, naming the attribute
            mask |= 1 << index[a]
        for u in _bits(mask):
            adj[u] |= mask & ~(1 << u)
    return tuple(adj)


def maximal_cliques(domain: Domain, cliques: Iterable[Iterable[str]]) -> list[Clique]:
    """Maximal cliques of a triangulation of the cliques' interaction graph.

    Every attribute of ``domain`` is covered (attributes in no clique become
    singleton cliques).  Returned in domain attribute order, deterministically.
    """
    cliques = _normalise_cliques(domain, cliques)
    _, found = _triangulate(domain.shape, _graph(domain, cliques))
    attrs = domain.attrs
    result = [tuple(attrs[u] for u in _bits(m)) for m in found]
    position = {a: i for i, a in enumerate(attrs)}
    result.sort(key=lambda cl: (-domain.size(cl), [position[a] for a in cl]))
    return result


def junction_tree_size(domain: Domain, cliques: Iterable[Iterable[str]]) -> int:
    """Number of cells (table entries) of the junction tree's clique potentials.

    This is the model size that AIM caps: the sum over maximal cliques of the
    product of their attributes' domain sizes.
    """
    cliques = [domain.check(cl, "clique") for cl in cliques]
    return _triangulate(domain.shape, _graph(domain, cliques))[0]


def junction_tree_sizes_with(domain: Domain, cliques: Iterable[Iterable[str]],
                              candidates: Sequence[Iterable[str]]) -> list[int]:
    """``[junction_tree_size(domain, [*cliques, c]) for c in candidates]``, with the
    interaction graph of ``cliques`` built once (AIM's per-round candidate filter)."""
    base = _graph(domain, [domain.check(cl, "clique") for cl in cliques])
    index = {a: i for i, a in enumerate(domain.attrs)}
    out = []
    for c in candidates:
        c = domain.check(c, "clique")
        mask = 0
        for a in c:
            mask |= 1 << index[a]
        adj = base
        if any(mask & ~(1 << u) & ~base[u] for u in _bits(mask)):
            extra = list(base)
            for u in _bits(mask):
                extra[u] |= mask & ~(1 << u)
            adj = tuple(extra)
        out.append(_triangulate(domain.shape, adj)[0])
    return out


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
        self._sets = [frozenset(cl) for cl in self.maximal]
        self._sizes = [domain.size(cl) for cl in self.maximal]
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
        for i, cl in enumerate(self._sets):
            if need <= cl and (best is None or self._sizes[i] < self._sizes[best]):
                best = i
        return best

    def size(self) -> int:
        """Cells of the junction tree (see :func:`junction_tree_size`)."""
        return sum(self._sizes)

    def __repr__(self) -> str:
        return f"JunctionTree(maximal={self.maximal}, edges={self.edges})"

"""Exact inference on a junction tree, in log space.

:class:`BeliefPropagation` precomputes, once per tree, which axes each message
sums over and how it broadcasts into its neighbour, so that calibrating a set
of clique potentials is a fixed sequence of tensor operations (two passes, one
logsumexp per edge and direction) with no per-cell Python work.  Beliefs are
normalised log-probabilities; the log partition function comes from the root.

:func:`marginal` answers an arbitrary attribute set exactly: inside one clique
it is a sum of that clique's belief; otherwise the smallest subtree touching
the attributes is written as root belief x conditionals (clique / separator),
and the unwanted attributes are summed out by greedy variable elimination.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .junction_tree import JunctionTree
from .reductions import max_over, sum_over


def _sum_dims(attrs: Sequence[str], keep: Sequence[str]) -> tuple[int, ...]:
    keep = set(keep)
    return tuple(i for i, a in enumerate(attrs) if a not in keep)


def _view(sub: Sequence[str], attrs: Sequence[str], domain) -> list[int]:
    """Shape that broadcasts a tensor over ``sub`` (a subsequence of ``attrs``) onto ``attrs``."""
    sub = set(sub)
    return [domain[a] if a in sub else 1 for a in attrs]


# Trees whose largest table has fewer cells calibrate with one logsumexp per message (the
# historical path); larger ones in probability space, axis by axis (issue 20).
_LARGE_TABLE_CELLS = 2**16


def _logsumexp(x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    return torch.logsumexp(x, dim=dims) if dims else x


class BeliefPropagation:
    """Sum-product (and min-sum) message passing on a fixed junction tree."""

    def __init__(self, tree: JunctionTree):
        self.tree = tree
        d = tree.domain
        self.up_dims: dict[int, tuple[int, ...]] = {}
        self.up_view: dict[int, list[int]] = {}
        self.down_dims: dict[int, tuple[int, ...]] = {}
        self.down_view: dict[int, list[int]] = {}
        for i, p in enumerate(tree.parent):
            if p is None:
                continue
            sep = tree.separator[i]
            self.up_dims[i] = _sum_dims(tree.maximal[i], sep)
            self.up_view[i] = _view(sep, tree.maximal[p], d)
            self.down_dims[i] = _sum_dims(tree.maximal[p], sep)
            self.down_view[i] = _view(sep, tree.maximal[i], d)
        self.largest = max((d.size(m) for m in tree.maximal), default=1)
        self.upward = [i for i in reversed(tree.order) if tree.parent[i] is not None]
        self.downward = [i for i in tree.order if tree.parent[i] is not None]

    def calibrate(self, log_potentials: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Normalised log-beliefs of every maximal clique, and the log partition function.

        ``log_potentials[i]`` is the log-potential of ``tree.maximal[i]`` (full shape).
        """
        tree = self.tree
        acc = list(log_potentials)
        up: dict[int, torch.Tensor] = {}
        for i in self.upward:
            msg = _logsumexp(acc[i], self.up_dims[i]).reshape(self.up_view[i])
            up[i] = msg
            acc[tree.parent[i]] = acc[tree.parent[i]] + msg
        root = acc[tree.root]
        log_z = torch.logsumexp(root.reshape(-1), dim=0)
        beliefs: list[torch.Tensor | None] = [None] * len(acc)
        beliefs[tree.root] = root - log_z
        for i in self.downward:
            p = tree.parent[i]
            # Hugin update: the parent's separator marginal divided by what i sent up.
            sep = _logsumexp(beliefs[p], self.down_dims[i]).reshape(self.down_view[i])
            beliefs[i] = acc[i] + sep - up[i].reshape(self.down_view[i])
        return beliefs, log_z

    def calibrate_probabilities(self, log_potentials: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Normalised beliefs as probabilities (not logs), and the log partition function.

        Same result as ``exp`` of :meth:`calibrate`, computed in probability space: the
        upward pass keeps each child's ``exp(acc - max)`` (its message is the log of its
        sum, plus the max), and the downward pass scales that table by the parent's
        separator marginal over the child's sum.  This saves, over every table, the
        logsumexp's extra passes and the downward exponential (most of the work on large
        models); the reductions run axis by axis (`reductions`).
        """
        if self.largest < _LARGE_TABLE_CELLS:
            return self._calibrate_probabilities_small(log_potentials)
        tree = self.tree
        acc = list(log_potentials)
        # Tables made here are updated in place (fewer fresh large tables, fewer page
        # faults); the caller's potentials never are.
        owned = [False] * len(acc)
        scaled: dict[int, torch.Tensor] = {}
        sums: dict[int, torch.Tensor] = {}
        for i in self.upward:
            dims = self.up_dims[i]
            x = acc[i]
            top = max_over(x, dims)
            top = torch.where(torch.isfinite(top), top, torch.zeros((), dtype=top.dtype, device=top.device))
            e = (x - top.reshape(self.down_view[i])).exp_()
            total = sum_over(e, dims)
            scaled[i], sums[i] = e, total
            # log of a zero sum is -inf: a structural zero, as logsumexp gives.
            msg = (torch.log(total) + top).reshape(self.up_view[i])
            p = tree.parent[i]
            if owned[p]:
                acc[p].add_(msg)
            else:
                acc[p], owned[p] = acc[p] + msg, True
        root = acc[tree.root]
        top = root.max()
        top = top if bool(torch.isfinite(top)) else torch.zeros((), dtype=root.dtype, device=root.device)
        e = (root - top).exp_()
        z = e.sum()
        log_z = torch.log(z) + top
        probs: list[torch.Tensor | None] = [None] * len(acc)
        probs[tree.root] = e.div_(z)
        for i in self.downward:
            p = tree.parent[i]
            sep = sum_over(probs[p], self.down_dims[i]).reshape(self.down_view[i])
            total = sums[i].reshape(self.down_view[i])
            # Where the child's sum is zero the separator has no mass either (the message was
            # log 0): the child gets none, not 0/0.
            ratio = torch.where(total > 0, sep / torch.where(total > 0, total, 1.0), 0.0)
            probs[i] = scaled[i].mul_(ratio)
        return probs, log_z

    def _calibrate_probabilities_small(self, log_potentials: Sequence[torch.Tensor]
                                       ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The same with one logsumexp per message: on small tables the per-operation
        overhead of the probability-space passes costs more than the passes save."""
        tree = self.tree
        acc = list(log_potentials)
        up: dict[int, torch.Tensor] = {}
        for i in self.upward:
            msg = _logsumexp(acc[i], self.up_dims[i]).reshape(self.up_view[i])
            up[i] = msg
            acc[tree.parent[i]] = acc[tree.parent[i]] + msg
        root = acc[tree.root]
        log_z = torch.logsumexp(root.reshape(-1), dim=0)
        probs: list[torch.Tensor | None] = [None] * len(acc)
        probs[tree.root] = torch.exp(root - log_z)
        for i in self.downward:
            p = tree.parent[i]
            dims = self.down_dims[i]
            sep = (probs[p].sum(dim=dims) if dims else probs[p]).reshape(self.down_view[i])
            # Where the separator has no mass the child has none either; computing it as
            # log 0 - (-inf) would give NaN when a potential is -inf (a structural zero).
            ratio = torch.where(sep > 0, torch.log(sep) - up[i].reshape(self.down_view[i]), -math.inf)
            probs[i] = torch.exp(acc[i] + ratio)
        return probs, log_z

    def log_partition(self, log_potentials: Sequence[torch.Tensor]) -> torch.Tensor:
        """log sum_x prod_C psi_C(x_C), by the upward pass alone."""
        acc = list(log_potentials)
        for i in self.upward:
            msg = _logsumexp(acc[i], self.up_dims[i]).reshape(self.up_view[i])
            acc[self.tree.parent[i]] = acc[self.tree.parent[i]] + msg
        return torch.logsumexp(acc[self.tree.root].reshape(-1), dim=0)

    def min_sum(self, costs: Sequence[torch.Tensor]) -> torch.Tensor:
        """min over joint assignments x of sum_C cost_C(x_C) (upward min-sum pass)."""
        acc = list(costs)
        for i in self.upward:
            msg = acc[i].amin(dim=self.up_dims[i]) if self.up_dims[i] else acc[i]
            acc[self.tree.parent[i]] = acc[self.tree.parent[i]] + msg.reshape(self.up_view[i])
        return acc[self.tree.root].min()


def _steiner_nodes(tree: JunctionTree, attrs: Sequence[str]) -> list[int]:
    """Nodes of the smallest subtree whose cliques cover ``attrs`` (top-down order)."""
    needed = set(attrs)
    # Greedily pick nodes covering the attributes, then close under tree paths.
    chosen: set[int] = set()
    left = set(needed)
    while left:
        best = max(range(len(tree.maximal)), key=lambda i: (len(left & set(tree.maximal[i])), -i))
        chosen.add(best)
        left -= set(tree.maximal[best])
    depth = {tree.root: 0}
    for i in tree.order:
        if tree.parent[i] is not None:
            depth[i] = depth[tree.parent[i]] + 1
    nodes = set(chosen)
    frontier = set(chosen)
    # Walk every chosen node up until all walks meet at the shallowest common ancestor.
    while len(frontier) > 1:
        deepest = max(frontier, key=lambda i: (depth[i], i))
        frontier.discard(deepest)
        up = tree.parent[deepest]
        nodes.add(up)
        frontier.add(up)
    return [i for i in tree.order if i in nodes]


def eliminate(factors: list[tuple[tuple[str, ...], torch.Tensor]], keep: Sequence[str], domain) -> torch.Tensor:
    """Sum a product of (non-log) factors down to ``keep`` by greedy variable elimination.

    Each step removes the attribute whose elimination creates the smallest
    intermediate table.  Returns a tensor with axes in ``keep`` order.
    """
    keep = tuple(keep)
    labels: dict[str, int] = {}
    for attrs, _ in factors:
        for a in attrs:
            labels.setdefault(a, len(labels))
    for a in keep:
        labels.setdefault(a, len(labels))
    factors = list(factors)
    todo = {a for attrs, _ in factors for a in attrs} - set(keep)
    while todo:
        def cost(v):
            scope = set().union(*(set(at) for at, _ in factors if v in at)) - {v}
            return math.prod(domain[a] for a in scope), v
        v = min(todo, key=cost)
        todo.discard(v)
        involved = [f for f in factors if v in f[0]]
        factors = [f for f in factors if v not in f[0]]
        scope = tuple(dict.fromkeys(a for at, _ in involved for a in at if a != v))
        args = []
        for at, t in involved:
            args += [t, [labels[a] for a in at]]
        factors.append((scope, torch.einsum(*args, [labels[a] for a in scope])))
    args = []
    for at, t in factors:
        args += [t, [labels[a] for a in at]]
    out = torch.einsum(*args, [labels[a] for a in keep])
    # Attributes of ``keep`` that no factor mentions cannot occur here (trees cover the domain).
    return out


def marginal(tree: JunctionTree, probs: Sequence[torch.Tensor], attrs: Sequence[str],
             conditionals: dict[int, torch.Tensor] | None = None) -> torch.Tensor:
    """Exact marginal probability table of ``attrs`` (axes in the order given).

    ``probs[i]`` is the calibrated probability table (not log) of ``tree.maximal[i]``.
    ``conditionals``, when given, caches each node's table divided by its separator
    marginal across calls on the same ``probs`` (AIM asks for hundreds of marginals of
    one model per round, and each conditional is a pass over a whole clique table).
    """
    attrs = tuple(attrs)
    domain = tree.domain
    if not attrs:
        return probs[tree.root].sum()
    home = tree.containing(attrs)
    if home is not None:
        clique = tree.maximal[home]
        dims = _sum_dims(clique, attrs)
        table = probs[home].sum(dim=dims) if dims else probs[home]
        kept = [a for a in clique if a in attrs]
        return table.permute([kept.index(a) for a in attrs])
    nodes = _steiner_nodes(tree, attrs)
    top = nodes[0]
    factors = [(tree.maximal[top], probs[top])]
    for i in nodes[1:]:
        conditional = None if conditionals is None else conditionals.get(i)
        if conditional is None:
            sep_dims = _sum_dims(tree.maximal[i], tree.separator[i])
            table = probs[i]
            sep = table.sum(dim=sep_dims, keepdim=True) if sep_dims else table
            conditional = torch.where(sep > 0, table / torch.where(sep > 0, sep, 1.0), 0.0)
            if conditionals is not None:
                conditionals[i] = conditional
        factors.append((tree.maximal[i], conditional))
    return eliminate(factors, attrs, domain)

"""The fitted graphical model: marginals, model size, exact and conditional sampling."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from .clique_vector import CliqueVector
from .domain import Domain
from .factor import DTYPE, Factor, resolve_device, small_work_threads
from .inference import BeliefPropagation, _sum_dims, _view, marginal
from .junction_tree import JunctionTree

STATE_FORMAT = "dpsynth.pgm.GraphicalModel/1"
VECTORISED_CELLS = 262_144


class ParameterMap:
    """Moves tensors between the parameter cliques and the junction tree's maximal cliques.

    Parameters live on the (canonically ordered) input cliques; message passing
    runs on maximal cliques.  Each parameter clique is assigned to one maximal
    clique containing it.  Broadcasting parameters onto the maximal cliques and
    summing maximal-clique tables down to the parameter cliques are the same
    0/1 matrix (and its transpose), stored as index pairs so that each is a
    single gather + ``index_add`` over all cliques at once, whatever their number.
    Flat vectors concatenate the cliques' tensors (C order) in clique order.
    """

    def __init__(self, tree: JunctionTree, device: torch.device):
        self.tree = tree
        self.device = device
        self.bp = BeliefPropagation(tree)
        d = tree.domain
        self.max_shapes = [d.project(m).shape for m in tree.maximal]
        self.max_sizes = [d.size(m) for m in tree.maximal]
        self.param_shapes = [d.project(cl).shape for cl in tree.cliques]
        self.param_sizes = [d.size(cl) for cl in tree.cliques]
        max_offset = np.concatenate([[0], np.cumsum(self.max_sizes)])
        param_offset = np.concatenate([[0], np.cumsum(self.param_sizes)])
        self.n_max = int(max_offset[-1])
        self.n_param = int(param_offset[-1])
        # Gather/index_add is one call whatever the number of cliques (best when
        # per-call overhead dominates); on big tables random access costs more
        # than one broadcast add or sum per clique, so large models use those (and
        # never build the index pairs: two int64 vectors of the model's size).
        self.per_clique = self.n_max > VECTORISED_CELLS
        rows, cols = [], []
        for i, cl in enumerate(tree.cliques if not self.per_clique else ()):
            h = tree.assignment[cl]
            shape = self.max_shapes[h]
            local = np.arange(self.param_sizes[i]).reshape(_view(cl, tree.maximal[h], d))
            cols.append(param_offset[i] + np.broadcast_to(local, shape).reshape(-1))
            rows.append(max_offset[h] + np.arange(self.max_sizes[h]))
        self.rows = torch.as_tensor(np.concatenate(rows) if rows else np.zeros(0, np.int64), device=device)
        self.cols = torch.as_tensor(np.concatenate(cols) if cols else np.zeros(0, np.int64), device=device)
        self.home = [tree.assignment[cl] for cl in tree.cliques]
        self.view = [_view(cl, tree.maximal[h], d) for cl, h in zip(tree.cliques, self.home)]
        self.dims = [_sum_dims(tree.maximal[h], cl) for cl, h in zip(tree.cliques, self.home)]
        self.projection_plan = _projection_plan(tree)

    def flatten(self, tensors: Sequence[torch.Tensor]) -> torch.Tensor:
        return torch.cat([t.reshape(-1) for t in tensors]) if tensors else torch.zeros(0, dtype=DTYPE, device=self.device)

    def split_params(self, flat: torch.Tensor) -> list[torch.Tensor]:
        return [t.reshape(s) for t, s in zip(torch.split(flat, self.param_sizes), self.param_shapes)]

    def potentials_flat(self, theta: torch.Tensor) -> list[torch.Tensor]:
        """Log-potentials of the maximal cliques from the flat parameter vector."""
        if self.per_clique:
            pots: list[torch.Tensor | None] = [None] * len(self.max_sizes)
            owned = [False] * len(self.max_sizes)
            for t, h, v in zip(self.split_params(theta), self.home, self.view):
                t = t.reshape(v)
                if pots[h] is None:
                    pots[h] = t  # a view of theta: never written to
                elif owned[h] and torch.broadcast_shapes(pots[h].shape, t.shape) == pots[h].shape:
                    pots[h].add_(t)  # in place: no new table, no fresh pages, per parameter clique
                else:
                    pots[h], owned[h] = pots[h] + t, True
            return [torch.zeros(s, dtype=theta.dtype, device=theta.device) if p is None else p.expand(s)
                    for p, s in zip(pots, self.max_shapes)]
        out = torch.zeros(self.n_max, dtype=theta.dtype, device=theta.device)
        out.index_add_(0, self.rows, theta[self.cols])
        return [t.reshape(s) for t, s in zip(torch.split(out, self.max_sizes), self.max_shapes)]

    def potentials(self, theta: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return self.potentials_flat(self.flatten(theta))

    def project_flat(self, probs: Sequence[torch.Tensor]) -> torch.Tensor:
        """Flat marginals of every parameter clique from the maximal cliques' tables."""
        if self.per_clique:
            out: dict[int, torch.Tensor] = {}
            for i, from_maximal, src, dims in self.projection_plan:
                base = probs[src] if from_maximal else out[src]
                out[i] = base.sum(dim=dims) if dims else base
            return self.flatten([out[i] for i in range(len(self.param_sizes))])
        p = self.flatten(probs)
        out = torch.zeros(self.n_param, dtype=p.dtype, device=p.device)
        return out.index_add_(0, self.cols, p[self.rows])

    def project(self, probs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return self.split_params(self.project_flat(probs))


def _projection_plan(tree: JunctionTree) -> list[tuple[int, bool, int, tuple[int, ...]]]:
    """How to sum each parameter clique's marginal out of the cheapest table holding it.

    Entries (slot, source is maximal, source, dims), run in order: slot ``i < len(cliques)``
    is parameter clique i; higher slots are intermediate tables.  Largest cliques first;
    each is summed from the smallest table that contains it — a maximal clique, a
    parameter clique already computed (a 1-way marginal from a 2-way one) or an
    intermediate.  Calibrated beliefs agree on shared attributes, so every source gives
    the same marginal.  An intermediate is made when a clique would be summed out of a
    table at least two attributes larger and another clique still to come fits in that
    table less one of those attributes: the table is summed over that attribute once, and
    both come from the smaller result (a 1.8M-cell maximal clique holding six measured
    3-way marginals is read twice instead of six times).
    """
    d = tree.domain
    cliques = tree.cliques
    n = len(cliques)
    # Available tables: (attrs, size, from_maximal, source index).
    tables: list[tuple[tuple[str, ...], int, bool, int]] = [
        (tuple(m), d.size(m), True, j) for j, m in enumerate(tree.maximal)]
    order = sorted(range(n), key=lambda i: -d.size(cliques[i]))
    plan: list[tuple[int, bool, int, tuple[int, ...]]] = []
    slots = n
    for rank, i in enumerate(order):
        cl = set(cliques[i])
        attrs, size, from_maximal, src = min((t for t in tables if cl <= set(t[0])), key=lambda t: t[1])
        pending = [set(cliques[k]) for k in order[rank + 1:]]
        while len(attrs) - len(cl) >= 2:
            inside = [p for p in pending if p <= set(attrs)]
            best, shared = None, 0
            for a in attrs:
                if a in cl:
                    continue
                k = sum(1 for p in inside if a not in p)
                if k > shared or (k == shared and k and d.size([a]) > d.size([best])):
                    best, shared = a, k
            if best is None:
                break
            kept = tuple(x for x in attrs if x != best)
            plan.append((slots, from_maximal, src, (attrs.index(best),)))
            attrs, size, from_maximal, src = kept, d.size(kept), False, slots
            tables.append((attrs, size, False, slots))
            slots += 1
        plan.append((i, from_maximal, src, _sum_dims(attrs, cliques[i])))
        tables.append((tuple(cliques[i]), d.size(cliques[i]), False, i))
    return plan


def _check_rng(rng) -> np.random.Generator:
    if rng is None:
        return np.random.default_rng()
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy.random.Generator")
    return rng


def _systematic_uniforms(group: np.ndarray, n_groups: int, rng: np.random.Generator) -> np.ndarray:
    """Per row, a uniform in [0, 1) such that within each group of size m the values are
    (k + U_group) / m for k = 0..m-1, assigned to the group's rows in random order.

    Each value alone is Uniform[0, 1) (so every row keeps its exact conditional law);
    jointly they hit each conditional cell of probability p either floor(m p) or
    ceil(m p) times.  Random assignment keeps the rows exchangeable within a group, so
    no attribute drawn earlier becomes correlated with the one drawn now.
    """
    n = group.size
    # By group, in random order within a group: a uniform permutation, then a stable sort by
    # group (a radix sort for up to 2^16 groups: linear, ~6x faster than lexsort on a random key).
    perm = rng.permutation(n)
    small = np.uint16 if n_groups <= 1 << 16 else np.int64
    order = perm[np.argsort(group[perm].astype(small, copy=False), kind="stable")]
    sizes = np.bincount(group, minlength=n_groups)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    sorted_group = group[order]
    rank = np.arange(n) - starts[sorted_group]
    offset = rng.random(n_groups)
    u = np.empty(n)
    u[order] = (rank + offset[sorted_group]) / sizes[sorted_group]
    return u


class GraphicalModel:
    """A discrete graphical model ``p(x) ∝ exp(sum_C theta_C(x_C))`` scaled to ``total`` records.

    Args:
        domain: the attributes and their sizes.
        potentials: log-potentials, one :class:`Factor` per clique.
        total: the (estimated) number of records; marginals are returned as counts.
        device: where the tensors live (default: CUDA when available, else CPU).
    """

    def __init__(self, domain: Domain, potentials: CliqueVector, total: float = 1.0, device=None):
        self.domain = domain
        self.device = resolve_device(device)
        if not np.isfinite(total) or total <= 0:
            raise ValueError(f"total must be positive and finite, got {total}")
        self.total = float(total)
        canonical: dict[tuple[str, ...], Factor] = {}
        for cl, f in potentials.items():
            key = domain.canonical(cl)
            for a in key:
                if f.domain[a] != domain[a]:
                    raise ValueError(f"clique {cl}: attribute {a!r} has size {f.domain[a]}, domain says {domain[a]}")
            f = f.transpose(key)
            f = Factor(f.domain, f.values.to(self.device))
            canonical[key] = canonical[key] + f if key in canonical else f
        self.tree = JunctionTree(domain, list(canonical))
        self.cliques: list[tuple[str, ...]] = list(self.tree.cliques)
        self.potentials = CliqueVector({cl: canonical[cl] for cl in self.cliques})
        self._map: ParameterMap | None = None
        self._probs: list[torch.Tensor] | None = None
        self._log_z: float | None = None
        self._conditionals: dict[int, torch.Tensor] = {}

    def _threads(self):
        return small_work_threads(self.device, max(self.domain.size(m) for m in self.tree.maximal))

    @property
    def parameter_map(self) -> ParameterMap:
        if self._map is None:
            self._map = ParameterMap(self.tree, self.device)
        return self._map

    def _calibrate(self) -> list[torch.Tensor]:
        if self._probs is None:
            theta = [self.potentials[cl].values for cl in self.cliques]
            with self._threads():
                self._probs, log_z = self.parameter_map.bp.calibrate_probabilities(self.parameter_map.potentials(theta))
            self._log_z = float(log_z)
        return self._probs

    # ---- queries -------------------------------------------------------
    @property
    def size(self) -> int:
        """Cells of the junction tree (the model size AIM caps)."""
        return self.tree.size()

    @property
    def log_partition(self) -> float:
        """log sum_x exp(sum_C theta_C(x_C))."""
        self._calibrate()
        return self._log_z

    def probabilities(self, attrs: Sequence[str] | str) -> torch.Tensor:
        """Exact marginal probability table of ``attrs`` (axes in the order given), as a tensor."""
        if isinstance(attrs, str):
            attrs = (attrs,)
        attrs = self.domain.check(attrs, "marginal")
        with self._threads():
            return marginal(self.tree, self._calibrate(), attrs, self._conditionals)

    def project(self, attrs: Sequence[str] | str) -> np.ndarray:
        """Exact marginal counts (probabilities x total) of ``attrs``, shape ``domain.project(attrs).shape``."""
        return (self.probabilities(attrs) * self.total).cpu().numpy()

    def project_many(self, cliques: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """``[self.project(c) for c in cliques]`` in one pass: one thread setting, one
        calibration, each clique table's conditional computed once for all of them, and a
        marginal inside one already computed here summed out of it when that table is
        smaller than the model's table it would otherwise come from (AIM asks for a
        workload's downward closure: most 2- and 1-way marginals lie in a 3-way one).
        Equal to the one-by-one answers up to floating-point summation order."""
        cliques = [self.domain.check((c,) if isinstance(c, str) else c, "marginal") for c in cliques]
        tree = self.tree
        tables: list[torch.Tensor | None] = [None] * len(cliques)
        done: list[int] = []
        with self._threads():
            probs = self._calibrate()
            for i in sorted(range(len(cliques)), key=lambda i: -len(cliques[i])):
                c = cliques[i]
                need = set(c)
                source = None
                for j in done:
                    if need <= set(cliques[j]) and (source is None or tables[j].numel() < tables[source].numel()):
                        source = j
                home = tree.containing(c) if c else tree.root
                if source is not None and (home is None or tables[source].numel() < probs[home].numel()):
                    have = cliques[source]
                    dims = _sum_dims(have, c)
                    table = tables[source].sum(dim=dims) if dims else tables[source]
                    kept = [a for a in have if a in need]
                    tables[i] = table.permute([kept.index(a) for a in c])
                else:
                    tables[i] = marginal(tree, probs, c, self._conditionals)
                done.append(i)
            return [(t * self.total).cpu().numpy() for t in tables]

    def clique_marginals(self) -> CliqueVector:
        """Count marginals (as log-free Factors holding counts) on every parameter clique."""
        tables = self.parameter_map.project(self._calibrate())
        return CliqueVector({cl: Factor(self.domain.project(cl), t * self.total)
                             for cl, t in zip(self.cliques, tables)})

    # ---- sampling ------------------------------------------------------
    def sample(self, n: int, *, where: Mapping[str, int | Sequence[int]] | None = None,
               rng: np.random.Generator | None = None, method: str = "iid") -> np.ndarray:
        """Draw ``n`` rows, shape ``(n, len(domain))``, columns in ``domain.attrs`` order.

        Ancestral sampling down the junction tree: the root clique's variables
        from its belief, then each clique's new variables from its belief
        conditioned on the separator already drawn.  ``where`` maps attributes
        to a code or a set of codes; the model is conditioned on them exactly
        (potentials restricted to those codes, then recalibrated), so every row
        satisfies ``where`` and follows ``p(x | where)``.

        ``method="iid"`` draws independent rows.  ``method="systematic"`` draws
        each conditional by systematic sampling within each separator group
        (one uniform offset per group, ranks matched to rows at random): every
        row still has exactly the model's distribution, but the counts of each
        conditional cell are within one of their expectation, which removes
        most of the multinomial sampling error from the released marginals
        (mbi's ``synthetic_data`` rounds counts for the same reason).
        """
        if int(n) != n or n < 0:
            raise ValueError(f"n must be a non-negative integer, got {n}")
        if method not in ("iid", "systematic"):
            raise ValueError(f"method must be 'iid' or 'systematic', got {method!r}")
        n = int(n)
        rng = _check_rng(rng)
        model, codes = (self, None) if not where else self._restricted(where)
        with self._threads():
            rows = model._ancestral(n, rng, systematic=method == "systematic")
        if codes:
            for j, a in enumerate(self.domain.attrs):
                if a in codes:
                    rows[:, j] = codes[a][rows[:, j]]
        return rows

    def _restricted(self, where: Mapping[str, int | Sequence[int]]):
        codes: dict[str, np.ndarray] = {}
        for a, v in where.items():
            if a not in self.domain:
                raise ValueError(f"where: attribute {a!r} is not in the domain")
            values = np.atleast_1d(np.asarray(v))
            if values.size == 0:
                raise ValueError(f"where: attribute {a!r} has no allowed values")
            if not np.issubdtype(values.dtype, np.integer):
                raise ValueError(f"where: attribute {a!r} needs integer codes")
            if values.min() < 0 or values.max() >= self.domain[a]:
                raise ValueError(f"where: attribute {a!r} has a code outside 0..{self.domain[a] - 1}")
            codes[a] = np.unique(values).astype(np.int64)
        domain = Domain(self.domain.attrs, [len(codes[a]) if a in codes else n
                                            for a, n in zip(self.domain.attrs, self.domain.shape)])
        restricted = {}
        for cl, f in self.potentials.items():
            values = f.values
            for axis, a in enumerate(cl):
                if a in codes:
                    values = values.index_select(axis, torch.as_tensor(codes[a], device=values.device))
            restricted[cl] = Factor(domain.project(cl), values)
        return GraphicalModel(domain, CliqueVector(restricted), self.total, self.device), codes

    def _ancestral(self, n: int, rng: np.random.Generator, systematic: bool = False) -> np.ndarray:
        tree, domain = self.tree, self.domain
        probs = self._calibrate()
        drawn: dict[str, torch.Tensor] = {}
        for node in tree.order:
            clique = tree.maximal[node]
            sep = tree.separator[node]
            new = tuple(a for a in clique if a not in sep)
            if not new:
                continue
            table = probs[node].permute([clique.index(a) for a in sep + new])
            n_sep, n_new = domain.size(sep), domain.size(new)
            table = table.reshape(n_sep, n_new)
            table = torch.nan_to_num(table, nan=0.0, posinf=0.0, neginf=0.0).clamp_(min=0.0)
            sums = table.sum(dim=1, keepdim=True)
            # A separator value of probability zero (underflow, or a -inf potential) is never
            # drawn, but its row must still be a valid CDF: one NaN row would break the sorted
            # order that the single searchsorted below relies on, for every row.
            conditional = torch.where(sums > 0, table / torch.where(sums > 0, sums, 1.0), 1.0 / n_new)
            cdf = torch.cumsum(conditional, dim=1)
            cdf[:, -1] = 1.0  # guard the last bin against rounding
            # Offsetting row r by r turns all conditionals into one sorted array,
            # so one searchsorted draws every row (no (n x n_new) gather).
            offsets = torch.arange(n_sep, dtype=DTYPE, device=cdf.device).unsqueeze(1)
            flat = (cdf + offsets).reshape(-1)
            row = torch.zeros(n, dtype=torch.int64, device=cdf.device)
            for a in sep:
                row = row * domain[a] + drawn[a]
            u = torch.as_tensor(_systematic_uniforms(row.cpu().numpy(), n_sep, rng) if systematic
                                else rng.random(n), dtype=DTYPE, device=cdf.device)
            pick = torch.searchsorted(flat, row.to(DTYPE) + u, right=True) - row * n_new
            pick = pick.clamp_(0, n_new - 1)
            for a in reversed(new):
                drawn[a] = pick % domain[a]
                pick = pick // domain[a]
        return torch.stack([drawn[a] for a in domain.attrs], dim=1).cpu().numpy().astype(np.int64)

    # ---- persistence ---------------------------------------------------
    def to_state_meta(self) -> dict:
        """JSON-able description (domain, cliques, total); the tensors are in :meth:`to_state_arrays`."""
        return {
            "format": STATE_FORMAT,
            "domain": {"attrs": list(self.domain.attrs), "shape": list(self.domain.shape)},
            "cliques": [list(cl) for cl in self.cliques],
            "total": self.total,
        }

    def to_state_arrays(self) -> dict[str, np.ndarray]:
        """The log-potentials, ``"potential_<i>"`` for clique ``cliques[i]`` (float64)."""
        return {f"potential_{i}": self.potentials[cl].numpy().copy() for i, cl in enumerate(self.cliques)}

    @classmethod
    def from_state(cls, meta: Mapping, arrays: Mapping[str, np.ndarray], device=None) -> "GraphicalModel":
        if meta.get("format") != STATE_FORMAT:
            raise ValueError(f"not a GraphicalModel state (format {meta.get('format')!r})")
        domain = Domain(meta["domain"]["attrs"], meta["domain"]["shape"])
        dev = resolve_device(device)
        factors = {}
        for i, cl in enumerate(meta["cliques"]):
            cl = tuple(cl)
            factors[cl] = Factor(domain.project(cl), torch.as_tensor(np.asarray(arrays[f"potential_{i}"]), device=dev))
        return cls(domain, CliqueVector(factors), meta["total"], dev)

    def __repr__(self) -> str:
        return f"GraphicalModel(cliques={self.cliques}, total={self.total:.1f}, size={self.size})"

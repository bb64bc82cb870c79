"""Learning schema facts privately: quantiles, key discovery, rare-category merging.

Each method is a gated measurement of `PrivateTable` (charged before it reads
anything) and returns only what its mechanism releases.  `learn_schema`
strings them together to complete a schema.

* Quantiles: the exponential mechanism over a public candidate grid with
  Smith's rank utility (proofs/quantiles.md).  Chosen over a noisy-histogram
  CDF because its rank error grows with log(grid size), not √(grid size): the
  public grid can be fine (thousands of points) at almost no cost, and the few
  quantiles a schema needs (two bounds, a handful of edges) compose cheaply.
* Key discovery: discrete Gaussian noisy counts of the observed keys, kept
  above a threshold τ at which a key held by one record survives with
  probability <= δ/2; charged as the discrete Gaussian's ρ composed with an
  `ApproximationEvent(δ/2)` paid from the policy's delta_reserve
  (proofs/key_discovery.md).
* Rare categories: discrete Gaussian noisy counts of the declared categories;
  those under a public minimum are merged into "other".
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from accountant.conversions import zcdp_rho
from accountant.events import (
    ApproximationEvent,
    ComposedEvent,
    DiscreteGaussianEvent,
    ExponentialMechanismEvent,
    NeighbouringRelation,
)

from ..schema import Column, Schema
from ..schema.column import seconds
from ..schema.encode import missing_mask, numeric_axis
from .measurement import Measurement
from .params import positive, probability
from .queries import key_counts, key_order, quantile_scores
from .thresholds import key_threshold

__all__ = ["SchemaLearningMixin", "DEFAULT_GRID_POINTS"]

DEFAULT_GRID_POINTS = 1024


class SchemaLearningMixin:
    """Methods of `PrivateTable` that learn public facts through the gate."""

    # -- quantiles --------------------------------------------------------------------------------
    def _grid(self, col: Column, candidates: Sequence[Any] | None, lower: Any, upper: Any,
              n_candidates: int) -> np.ndarray:
        if candidates is not None:
            conv = (lambda v: seconds(pd.Timestamp(v))) if col.kind == "datetime" else float
            grid = np.unique(np.array([conv(c) for c in candidates], dtype=np.float64))
        else:
            lo = lower if lower is not None else col.lower
            hi = upper if upper is not None else col.upper
            if lo is None or hi is None:
                raise ValueError(f"column {col.name!r}: quantiles need a public candidate grid: pass candidates= "
                                 "or lower=/upper= (never taken from the data)")
            if col.kind == "datetime":
                lo, hi = seconds(pd.Timestamp(lo)), seconds(pd.Timestamp(hi))
            lo, hi = float(lo), float(hi)
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ValueError(f"column {col.name!r}: the grid needs finite lower < upper")
            if not isinstance(n_candidates, int) or n_candidates < 2:
                raise ValueError("n_candidates must be an integer >= 2")
            grid = np.linspace(lo, hi, n_candidates)
            if col.kind == "integer":
                grid = np.unique(np.round(grid))
        if grid.size < 2 or not np.all(np.isfinite(grid)):
            raise ValueError(f"column {col.name!r}: the candidate grid needs at least two finite points")
        return grid

    def quantiles(self, column: str, qs: Sequence[float], epsilon: float, *,
                  candidates: Sequence[Any] | None = None, lower: Any = None, upper: Any = None,
                  n_candidates: int = DEFAULT_GRID_POINTS, purpose: str, generator: str | None = None,
                  run_id: str | None = None, parameters: dict | None = None) -> list[Any]:
        """DP quantiles of a numeric/integer/datetime column, chosen from a public grid.

        Each q gets ε/len(qs) through the exponential mechanism with utility
        -|#{x <= c} - q·n| (sensitivity 1; missing values are ignored).  Charged as one
        entry composing len(qs) ExponentialMechanismEvent(ε/len(qs)).
        Returns grid points (floats; Timestamps for datetime columns), one per q.
        """
        col = self.schema.column(column)
        if col.is_discrete:
            raise ValueError(f"column {column!r}: quantiles are for numeric, integer or datetime columns")
        eps = positive(epsilon, "epsilon")
        if isinstance(qs, (str, bytes)) or not isinstance(qs, Sequence) or not qs:
            raise ValueError("qs must be a non-empty list of levels in (0, 1)")
        levels = [probability(q, f"qs[{i}]") for i, q in enumerate(qs)]
        grid = self._grid(col, candidates, lower, upper, n_candidates)
        share = eps / len(levels)
        spec = Measurement(kind="quantiles",
                           query={"column": column, "qs": levels, "epsilon": eps,
                                  "grid": {"size": int(grid.size), "first": float(grid[0]), "last": float(grid[-1]),
                                           "sha": _grid_digest(grid)}},
                           events=self._quantile_events(eps, len(levels)),
                           sensitivity=1.0, norm="linf")
        from dpsynth.noise.exponential_mechanism import sample_exponential_mechanism

        source = self._source

        def exact(rows: Any) -> list[np.ndarray]:
            values = rows.frame[column]
            isna = missing_mask(values)
            x = numeric_axis(col, values, isna)[~isna]
            return [quantile_scores(x, grid, q) for q in levels]

        def release(scores: list[np.ndarray], _: Any) -> list[Any]:
            picks = [float(grid[int(sample_exponential_mechanism(s, share, 1.0, source))]) for s in scores]
            if col.kind == "datetime":
                return [pd.Timestamp(int(round(p * 1e9))) for p in picks]
            return picks

        return self._measure(spec, purpose=purpose, generator=generator, run_id=run_id, parameters=parameters,
                             noise=None, exact=exact, release=release)

    # -- key discovery ------------------------------------------------------------------------------
    def discover_categories(self, column: str, epsilon: float, delta: float, *, purpose: str,
                            generator: str | None = None, run_id: str | None = None,
                            parameters: dict | None = None, max_keys: int | None = None) -> tuple[Any, ...]:
        """DP thresholded key discovery: the categories of `column` held by enough records.

        (ε, δ) is split: δ_thr = δ/2 bounds the probability that a key held by one record
        survives the threshold, and the noisy counts get a discrete Gaussian with
        ρ = zcdp_rho(ε, δ/2) (Δ = 1 under add/remove, √2 under replace-one), so the
        mechanism alone is (ε, δ)-DP.  The gate is charged both parts as one entry,
        ComposedEvent((DiscreteGaussianEvent(σ, Δ), ApproximationEvent(δ/2))): ρ·α* from the
        RDP budget and δ/2 from the policy's budget.delta_reserve (a ledger without a reserve
        refuses it with BudgetExceeded, nothing charged).  δ_thr is the same under both
        relations (proofs/key_discovery.md).  Returns the kept keys in a fixed order (sorted
        by type, then repr), which reveals nothing beyond the set.
        """
        col = self.schema.column(column)
        if col.kind not in ("categorical", "ordinal"):
            raise ValueError(f"column {column!r}: key discovery is for categorical or ordinal columns")
        eps = positive(epsilon, "epsilon")
        dlt = probability(delta, "delta")
        policy_delta = getattr(getattr(self.gate, "metadata", None), "delta", None)
        if policy_delta is not None and not dlt < policy_delta:
            raise ValueError(f"delta = {dlt!r} for key discovery must be below the policy's delta = {policy_delta!r}")
        delta_2 = self._l2_unit()
        event, sigma = self._keys_event(eps, dlt)
        tau = key_threshold(sigma, dlt / 2)
        spec = Measurement(kind="keys",
                           query={"column": column, "epsilon": eps, "delta": dlt, "sigma": sigma, "threshold": tau,
                                  "threshold_delta": dlt / 2},
                           events=(event,), sensitivity=delta_2, norm="keys")
        from dpsynth.noise.discrete_gaussian import sample_discrete_gaussian

        source = self._source

        def exact(rows: Any) -> dict[Any, int]:
            return key_counts(rows.frame[column])

        def release(counts: dict[Any, int], _: Any) -> tuple[Any, ...]:
            # The number of keys is only known after reading: the noise is drawn per observed key,
            # independent of the counts, in the public key order.
            z = np.asarray(sample_discrete_gaussian(sigma, len(counts), source), dtype=np.int64)
            kept = [k for (k, c), zi in zip(counts.items(), z) if c + int(zi) >= tau]
            kept.sort(key=key_order)
            return tuple(kept)

        keys = self._measure(spec, purpose=purpose, generator=generator, run_id=run_id, parameters=parameters,
                             noise=None, exact=exact, release=release)
        if max_keys is not None and len(keys) > max_keys:
            raise ValueError(f"column {column!r}: {len(keys)} keys discovered, more than max_keys = {max_keys}")
        return keys

    # -- rare categories -------------------------------------------------------------------------------
    def merge_rare_categories(self, column: str, sigma: float, min_count: float, *, purpose: str,
                              generator: str | None = None, run_id: str | None = None,
                              parameters: dict | None = None) -> Column:
        """Merge the declared categories whose noisy count is below `min_count` into "other".

        Noisy counts: discrete Gaussian of scale σ on the declared categories' counts
        (Δ = 1, √2 under replace-one), charged as DiscreteGaussianEvent(σ, Δ).  The table
        adopts the new column (out_of_range = "other") and returns it.
        """
        col = self.schema.column(column)
        if col.kind not in ("categorical", "ordinal") or col.categories is None:
            raise ValueError(f"column {column!r}: rare-category merging needs a categorical column with "
                             "declared categories")
        s = positive(sigma, "sigma")
        floor = float(min_count)
        if not math.isfinite(floor):
            raise ValueError("min_count must be finite")
        delta_2 = self._l2_unit()
        cats = tuple(col.categories)
        spec = Measurement(kind="category_counts", query={"column": column, "sigma": s, "min_count": floor},
                           events=(DiscreteGaussianEvent(s, delta_2, relation=self.relation),),
                           sensitivity=delta_2, norm="l2")
        from dpsynth.noise.discrete_gaussian import sample_discrete_gaussian

        source = self._source
        index = pd.Index(list(cats), dtype=object)

        def exact(rows: Any) -> np.ndarray:
            values = rows.frame[column].dropna().astype(object)
            codes = index.get_indexer(pd.Index(values.to_numpy(), dtype=object))
            return np.bincount(codes[codes >= 0], minlength=len(cats)).astype(np.int64)

        def release(counts: np.ndarray, noise: np.ndarray) -> tuple[Any, ...]:
            noisy = counts + noise
            return tuple(c for c, v in zip(cats, noisy) if v >= floor)

        kept = self._measure(spec, purpose=purpose, generator=generator, run_id=run_id, parameters=parameters,
                             noise=lambda: np.asarray(sample_discrete_gaussian(s, len(cats), source), dtype=np.int64),
                             exact=exact, release=release)
        if not kept:
            raise ValueError(f"column {column!r}: every category fell under min_count; nothing to keep "
                             "(the privacy for this measurement is spent)")
        new = col.replace(categories=kept, out_of_range="other")
        self._adopt_schema(self.schema.replace(new))
        return new

    # -- what a measurement will be charged (public: from ε, δ and the relation alone) -------------------
    def _quantile_events(self, epsilon: float, n_levels: int) -> tuple[ExponentialMechanismEvent, ...]:
        """The events of `quantiles` for `n_levels` levels at total `epsilon` (ε/len each)."""
        share = epsilon / n_levels
        return tuple(ExponentialMechanismEvent(share, relation=self.relation) for _ in range(n_levels))

    def _keys_event(self, epsilon: float, delta: float) -> tuple[ComposedEvent, float]:
        """(the event of `discover_categories` at (ε, δ), its σ): the discrete Gaussian's ρ with
        the threshold's δ/2 (module docstring)."""
        sigma = self._l2_unit() / math.sqrt(2 * zcdp_rho(epsilon, delta / 2))
        return ComposedEvent((DiscreteGaussianEvent(sigma, self._l2_unit(), relation=self.relation),
                              ApproximationEvent(delta / 2, relation=self.relation))), sigma

    # -- the whole schema -------------------------------------------------------------------------------
    @property
    def learning_notes(self) -> dict[str, str]:
        """{column: what the last `learn_schema` learned, and what it could not} (public facts)."""
        return dict(getattr(self, "_learning_notes", {}))

    def _learning_steps(self, epsilon: float, delta: float | None, bins: int | Mapping[str, int], tail: float,
                        generator: str | None,
                        ranges: Mapping[str, tuple[Any, Any]] | None = None) -> list[tuple[str, str, float, Any]]:
        """[(column, "keys", ε share, δ share) or (column, "quantiles", ε share, levels)]: what
        `learn_schema` will measure, checked against the policy first (public facts only)."""
        todo = self.schema.incomplete()
        eps = positive(epsilon, "epsilon")
        share = eps / len(todo)
        cats = [n for n in todo if self.schema.column(n).is_discrete]
        if cats and delta is None:
            raise ValueError(f"learning the categories of {cats} needs delta > 0 (thresholded key discovery)")
        dshare = probability(delta, "delta") / len(cats) if cats else None
        tail = probability(tail, "tail")
        from accountant.errors import PolicyViolation

        policy = self.gate.policy
        if not policy.allows_generator(generator):
            raise PolicyViolation(
                f"schema learning (generator {generator!r}) is not allowed by the policy (allowed: "
                f"{', '.join(policy.generators)}); the officer adds {generator!r} to the policy's generators; "
                "nothing was charged")
        if cats and not policy.delta_reserve > 0:
            raise PolicyViolation(
                f"learning the categories of {cats} spends delta (thresholded key discovery), but the policy sets "
                "no budget.delta_reserve; the officer sets one (a part of delta, e.g. a tenth), or declares the "
                "categories; nothing was charged")
        steps: list[tuple[str, str, float, Any]] = []
        for name in todo:
            if self.schema.column(name).is_discrete:
                steps.append((name, "keys", share, dshare))
                continue
            k = bins.get(name, 16) if isinstance(bins, Mapping) else bins
            if isinstance(k, bool) or not isinstance(k, int) or k < 1:
                raise ValueError(f"bins for column {name!r} must be a positive integer")
            lo, hi = (ranges or {}).get(name, (None, None))
            self._grid(self.schema.column(name), None, lo, hi, DEFAULT_GRID_POINTS)  # a public grid exists
            qs = [tail] + [i / k for i in range(1, k)] + [1 - tail]
            steps.append((name, "quantiles", share, sorted(set(q for q in qs if 0 < q < 1))))
        return steps

    def learning_events(self, epsilon: float, delta: float | None = None, *, bins: int | Mapping[str, int] = 16,
                        tail: float = 0.01, generator: str | None = "schema",
                        ranges: Mapping[str, tuple[Any, Any]] | None = None) -> list[Any]:
        """The events `learn_schema` with these arguments would charge, from public facts only
        (nothing is read or charged): a job that learns its schema and then fits checks both
        against the ledger before either measures."""
        if not self.schema.incomplete():
            return []
        events: list[Any] = []
        for _, what, share, extra in self._learning_steps(epsilon, delta, bins, tail, generator, ranges):
            events += [self._keys_event(share, extra)[0]] if what == "keys" else list(
                self._quantile_events(share, len(extra)))
        return events

    def learn_schema(self, epsilon: float, delta: float | None = None, *, purpose: str = "learn schema",
                     generator: str | None = "schema", run_id: str | None = None,
                     ranges: Mapping[str, tuple[Any, Any]] | None = None, bins: int | Mapping[str, int] = 16,
                     tail: float = 0.01) -> Schema:
        """Complete the schema: categories by key discovery, numeric bins by DP quantiles.

        ε is split evenly across the columns to learn (δ across the categorical ones).  A
        numeric column with public bounds and a number of bins is already complete; one
        without bins gets equi-depth edges: quantiles at `tail`, 1/k, ..., 1 - `tail` over the
        public range `ranges[name]` (or its declared bounds), clipped to out_of_range="clip".
        Each measurement is charged to the gate; the table adopts the new schema and returns it.

        Schema learning is a purpose the officer's policy allows like a generator: its charges
        name `generator` ("schema" by default), which the policy must list (or allow "*"), and
        learning categories spends δ, which needs the policy's ``delta_reserve``.  Both are
        checked before anything is measured, with a message saying what the officer adds.
        """
        if not self.schema.incomplete():
            return self.schema
        steps = self._learning_steps(epsilon, delta, bins, tail, generator, ranges)
        schema = self.schema
        notes: dict[str, str] = {}
        self._learning_notes = notes
        for name, what, share, extra in steps:
            col = schema.column(name)
            if what == "keys":
                dshare = extra
                keys = self.discover_categories(name, share, dshare, purpose=f"{purpose}: categories of {name}",
                                                generator=generator, run_id=run_id)
                if not keys:
                    raise ValueError(f"column {name!r}: no category survived the threshold (budget spent)")
                new = col.replace(categories=keys, out_of_range="other")
                # Public: the threshold follows from (ε, δ) alone (discover_categories).
                tau = key_threshold(self._keys_event(share, dshare)[1], dshare / 2)
                notes[name] = (f"{len(keys)} categories found; a category held by fewer than about {math.ceil(tau)} "
                               "records cannot pass the threshold at this epsilon and delta: declare any you know "
                               "of (until then such values are encoded as \"other\")")
            else:
                lo, hi = (ranges or {}).get(name, (None, None))
                points = self.quantiles(name, extra, share, lower=lo, upper=hi,
                                        purpose=f"{purpose}: bin edges of {name}", generator=generator,
                                        run_id=run_id)
                new = _column_from_edges(col, points)
                notes[name] = f"{len(new.edges) - 1} bins from DP quantiles; values beyond them are clipped"
            schema = schema.replace(new)
        self._adopt_schema(schema)
        return schema


def _column_from_edges(col: Column, points: list[Any]) -> Column:
    """Strictly increasing edges from DP quantile picks (post-processing)."""
    axis = [seconds(pd.Timestamp(p)) if col.kind == "datetime" else float(p) for p in points]
    edges = sorted(set(axis))
    if len(edges) < 2:  # every quantile landed on one grid point: one bin around it
        edges = [edges[0] - 0.5, edges[0] + 0.5]
    if col.kind == "datetime":
        values: list[Any] = [pd.Timestamp(int(round(e * 1e9))) for e in edges]
    else:
        values = edges
    return col.replace(bins=tuple(values), out_of_range="clip")


def _grid_digest(grid: np.ndarray) -> str:
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(grid, dtype=np.float64).tobytes()).hexdigest()[:16]

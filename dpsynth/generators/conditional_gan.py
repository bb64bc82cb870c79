"""What the conditional GANs (DP-CTGAN, PATE-GAN) share once their private steps are done.

Both generate rows with CTGAN's conditional generator (`dpctgan.networks.Generator`,
`activate`) from a layout the private table builds from its schema, conditioned on
categories drawn from NOISY category counts (`dpctgan.conditional.ConditionalSampler`);
everything here is post-processing of released outputs: the plan's budget check
against the gate (before anything is charged), sampling, conditional sampling and the
release digest of the noisy counts the model keeps.
"""

from __future__ import annotations

import math
import secrets
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch

from accountant.gate import BudgetExceeded

from .sealed import SealedModel

__all__ = ["ConditionalGan", "resolve_device", "check_plan_fits"]


def resolve_device(device: str | torch.device) -> torch.device:
    """'auto' -> CUDA when available, else CPU; anything else as torch understands it."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def check_plan_fits(gate: Any, plan: Any, name: str, error: type[Exception]) -> None:
    """Refuse, before any charge, a plan whose events together do not fit the ledger or the
    policy's per-run cap (the counts alone must never be spent on a run whose main part the
    gate would then refuse).  The refusal leads with the budget in words (share used, what
    one more run can still have), the filter's RDP figures after, as the gate's own does."""
    from accountant.words import budget_words

    costs = gate.spent_costs()
    gate_cost = plan.cost(gate.filter.order)
    policy = getattr(gate, "policy", None)
    cap = getattr(policy, "max_epsilon_per_run", None)
    if not gate.filter.admits(costs, gate_cost):
        words = budget_words(gate.filter, costs, max_epsilon_per_run=cap)
        raise BudgetExceeded(
            f"privacy budget exceeded: this {name} run (epsilon {plan.epsilon:g}) needs more than remains: "
            f"{words.headline}; {words.next_run}; ask for less epsilon; nothing was charged "
            f"(detail: RDP at order {gate.filter.order:.4g}: the plan costs {gate_cost:.6g}, "
            f"{gate.filter.remaining(costs):.6g} of {gate.filter.budget:.6g} remains)",
            requested=gate_cost, remaining=gate.filter.remaining(costs), budget=gate.filter.budget,
            order=gate.filter.order, epsilon_spent=gate.filter.epsilon_spent(costs),
            epsilon_budget=gate.filter.epsilon, delta=gate.filter.delta)
    run_filter = getattr(gate, "run_filter", None)
    if run_filter is not None:
        run_cost = math.fsum(run_filter.cost(e) for e in plan.events)
        if not run_filter.admits([], run_cost):
            raise error(
                f"this {name} run (epsilon {plan.epsilon:g}) is more than the policy's per-run cap allows: "
                f"each run may have at most epsilon {run_filter.epsilon:g} (max_epsilon_per_run); ask for at most that; "
                f"nothing was charged (detail: the plan costs RDP {run_cost:.6g} at order "
                f"{run_filter.order:.4g}, the cap admits {run_filter.budget:.6g})")


class ConditionalGan(SealedModel):
    """Base of the conditional GANs: fitted state `transformer`, `sampler`, `generator`,
    `plan`; subclasses set `embedding_dim` and `device`."""

    transformer: Any
    sampler: Any
    generator: Any
    plan: Any

    @classmethod
    def _gate_of(cls, table: Any, gate: Any) -> Any:
        from dpsynth.table import PrivateTable

        if not isinstance(table, PrivateTable):
            raise TypeError(f"{cls.generator_name} trains on a dpsynth.table.PrivateTable (its private steps run "
                            f"inside the table), not on a {type(table).__name__}")
        if gate is not None and gate is not table.gate:
            raise ValueError("the gate passed to fit is not the table's gate")
        return table.gate

    def _require_fitted(self) -> None:
        from .sealed import NotFitted

        if getattr(self, "generator", None) is None or getattr(self, "plan", None) is None:
            raise NotFitted("fit (or load) the model first")

    def _release_digests(self) -> dict[int, str] | None:
        """The noisy category counts the model keeps, against their release commitment."""
        from dpsynth.table.commitments import release_digest

        charges = self.provenance.charges
        if self.plan.frequency_event is None or not charges:
            return {}
        return {charges[0].sequence: release_digest([np.asarray(c, dtype=np.float64)
                                                     for c in self.sampler.noisy_counts])}

    # -- sampling (post-processing) -------------------------------------------------------
    def sample(self, n: int, where: Mapping[str, Any] | None = None, *, seed: int | None = None,
               gate: Any = None, batch: int = 4096,
               proportions: Mapping[str, Mapping[Any, float]] | None = None) -> pd.DataFrame:
        """n synthetic rows.

        `proportions={column: {value: share}}` rebalances one categorical column: exactly
        round(share·n) rows (largest remainder) are generated with the conditional vector fixed
        to each named value; the values not named share the rest, in proportion to the noisy
        category frequencies.  Post-processing: nothing is charged.  It cannot be combined with
        `where` (the generator takes one condition).

        `where={column: value}` fixes the conditional vector of one categorical column (the
        column then holds `value`; the others follow the generator); `where={column: [v1, v2]}`
        draws each row's value among those, in proportion to the noisy category frequencies
        (uniformly when they are all zero).  Refuses a model whose receipts do not verify."""
        from .dpctgan.networks import activate  # here: dpctgan's package imports this module

        self._require_fitted()
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be an int >= 0, got {n!r}")
        if proportions is not None:
            return self._sample_proportions(n, proportions, where, seed=seed, gate=gate, batch=batch)
        condition = self._condition(where) if where else None
        self.verify(gate)
        rng = torch.Generator(device=self.device)
        rng.manual_seed(secrets.randbits(63) if seed is None else int(seed))
        g = self.generator
        g.eval()
        parts, picks = [], []
        with torch.no_grad():
            for start in range(0, n, batch):
                b = min(batch, n - start)
                z = torch.randn(b, self.embedding_dim, generator=rng, device=self.device)
                if condition is None:
                    cond = self.sampler.sample_original(b, rng, self.device)
                else:
                    block_index, slots, probs, _, _ = condition
                    pick = (torch.zeros(b, dtype=torch.long, device=self.device) if len(slots) == 1 else
                            torch.multinomial(torch.as_tensor(probs, dtype=torch.float32, device=self.device), b,
                                              replacement=True, generator=rng))
                    cond = self.sampler.fixed(b, block_index, torch.as_tensor(slots, device=self.device)[pick],
                                              self.device)
                    picks.append(pick.cpu().numpy())
                parts.append(activate(g(torch.cat([z, cond], dim=1)), self.transformer, rng).cpu().numpy())
        features = np.concatenate(parts) if parts else np.zeros((0, self.transformer.dim), np.float32)
        features = self._post_features(features, rng)
        frame = self.transformer.inverse(features)
        if condition is not None:
            values = np.empty(len(condition[4]), dtype=object)
            values[:] = condition[4]
            chosen = np.concatenate(picks) if picks else np.zeros(0, np.int64)
            frame[condition[3]] = pd.Series(values[chosen], dtype=object)
        schema = getattr(self, "schema", None)
        # Written the way the table writes its values (0/1 stay 0/1, plain dates stay dates);
        # a model saved before it kept the table's schema gives the decoded values as they are.
        return frame if schema is None else schema.represent(frame)

    def _post_features(self, features: np.ndarray, rng: torch.Generator) -> np.ndarray:
        """Post-processing of the decoded features before they become rows (a hook; none here)."""
        return features

    def _sample_proportions(self, n: int, proportions: Any, where: Any, *, seed: int | None, gate: Any,
                            batch: int) -> pd.DataFrame:
        """One conditional block per value (`sample` with where={column: value}), shuffled."""
        from dpsynth.nn.layout import CategoricalBlock

        from .proportions import plan_shares

        if where:
            raise ValueError("proportions: cannot be combined with where (the generator takes one condition)")

        def values_of(col: str) -> tuple[list, int]:
            try:
                b = self.transformer.block(col)
            except KeyError:
                raise KeyError(f"proportions: unknown column {col!r}") from None
            if not isinstance(b, CategoricalBlock):
                raise ValueError(f"proportions: column {col!r} is numeric; rebalance a categorical column")
            return list(b.facts.categories) + ([None] if b.facts.nullable else []), 0

        col, blocks = plan_shares(n, proportions, values_of)
        self.verify(gate)
        values, _ = values_of(col)
        rng = np.random.default_rng(secrets.randbits(63) if seed is None else int(seed))
        parts = []
        for block in blocks:
            chosen = [values[i] for i in block.indices]
            parts.append(self.sample(block.rows, where={col: chosen if len(chosen) > 1 else chosen[0]},
                                     seed=int(rng.integers(2**62)), batch=batch))
        if not parts:
            return self.sample(0, seed=int(rng.integers(2**62)), batch=batch)
        frame = pd.concat(parts, ignore_index=True)
        return frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)

    # -- the table's schema (how it writes its values), kept with the model ---------------------
    def _schema_meta(self) -> dict[str, Any]:
        schema = getattr(self, "schema", None)
        return {} if schema is None else {"schema": schema.to_dict()}

    @staticmethod
    def _schema_from(meta: Mapping[str, Any]) -> Any:
        from dpsynth.schema import Schema

        return Schema.from_dict(meta["schema"]) if "schema" in meta else None

    def _condition(self, where: Mapping[str, Any]) -> tuple[int, list[int], np.ndarray, str, list[Any]]:
        """(block index, slots, their probabilities, column, values) of a `where` condition."""
        if not isinstance(where, Mapping):
            raise TypeError("where must be a mapping {column: value or list of values}")
        if len(where) != 1:
            raise ValueError("where: condition on one categorical column at a time")
        (col, wanted), = where.items()
        values = list(wanted) if isinstance(wanted, (list, tuple, set, frozenset)) else [wanted]
        if not values:
            raise ValueError(f"where: no value given for column {col!r}")
        by_slot: dict[int, Any] = {}
        block = None
        for v in values:
            block, slot = self.transformer.condition_features(col, v)
            by_slot.setdefault(slot, v)
        slots = sorted(by_slot)  # schema order: a set of values gives a reproducible draw
        block_index = self.sampler.blocks.index(block)
        weights = self.sampler.p_freq[block_index][slots]
        total = float(weights.sum())
        probs = weights / total if total > 0 else np.full(len(slots), 1.0 / len(slots))
        return block_index, slots, probs, col, [by_slot[s] for s in slots]


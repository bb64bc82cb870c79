"""DPCTGAN: CTGAN with a DP-SGD discriminator, charged in full before it trains.

    gate = Gate.open("ledger.db", ledger_key="ledger.key")
    model = DPCTGAN(epsilon=1.0, epochs=10).fit(table)          # table: a PrivateTable on that gate
    synthetic = model.sample(1000)
    rich = model.sample(200, where={"income": ">50K"})
    model.save("adult.dpctgan"); DPCTGAN.load("adult.dpctgan", trust="ledger.pub").sample(10)

The private steps run inside the private table: the noisy category counts, and
for each of the T planned DP-SGD steps the Poisson sample, per-record
gradients, clipping and noise (`PrivateTable.dpsgd_session`).  The model sees
only noisy outputs; the fitted state is sealed in the ledger.  See
proofs/dpctgan.md for the privacy statement.
"""

from __future__ import annotations

import math
import secrets
import uuid
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch

from accountant.events import NeighbouringRelation
from accountant.gate import BudgetExceeded

from dpsynth.nn.discriminator import DiscriminatorSpec
from dpsynth.nn.layout import TableTransformer

from ..provenance import Provenance
from ..sealed import NotFitted, SealedModel
from .conditional import ConditionalSampler
from .networks import Discriminator, Generator, activate
from .plan import PlanError, TrainingPlan, make_plan, run_order
from .trainer import Networks, TrainingLog, train

__all__ = ["DPCTGAN", "NotFitted"]

FORMAT = "dpsynth.dpctgan/2"


def resolve_device(device: str | torch.device) -> torch.device:
    """'auto' -> CUDA when available, else CPU; anything else as torch understands it."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class DPCTGAN(SealedModel):
    """Differentially private CTGAN (Xu et al. 2019) with the discriminator trained by DP-SGD.

    Args:
        epsilon: this run's share of the dataset's budget, at the policy's δ.
        epochs: expected passes over `max_records` (the policy's public bound on n).
        batch_size: expected batch at `max_records`; q = batch_size / max_records.
        sampling_rate: give q directly instead of `batch_size`.
        max_grad_norm: per-record clipping norm C of the discriminator's gradient.
        frequency_share: fraction of the run's RDP budget for the noisy category counts.
        log_frequency: CTGAN's training-by-sampling on log-frequencies.
        device: "auto" (GPU when present), "cpu", "cuda", …
        seed: reproducible post-processing randomness (initial weights, generated rows, the
            generator's steps); the private randomness is the table's own source.
    """

    generator_name = "dpctgan"
    FORMAT = FORMAT

    def __init__(self, *, epsilon: float, epochs: int = 10, batch_size: int | None = 500,
                 sampling_rate: float | None = None, max_grad_norm: float = 1.0, frequency_share: float = 0.1,
                 log_frequency: bool = True, embedding_dim: int = 128,
                 generator_dims: tuple[int, ...] = (256, 256), discriminator_dims: tuple[int, ...] = (256, 256),
                 generator_lr: float = 2e-4, discriminator_lr: float = 2e-4, weight_decay: float = 1e-6,
                 dropout: float = 0.5, device: str | torch.device = "auto", seed: int | None = None,
                 progress: bool = True) -> None:
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not (
                math.isfinite(epsilon) and epsilon > 0):
            raise PlanError(f"epsilon must be a finite number > 0, got {epsilon!r}")
        for name, dims in (("generator_dims", generator_dims), ("discriminator_dims", discriminator_dims)):
            if not dims or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in dims):
                raise ValueError(f"{name} must be a non-empty tuple of positive ints, got {dims!r}")
        if isinstance(embedding_dim, bool) or not isinstance(embedding_dim, int) or embedding_dim < 1:
            raise ValueError(f"embedding_dim must be a positive int, got {embedding_dim!r}")
        for name, v in (("generator_lr", generator_lr), ("discriminator_lr", discriminator_lr)):
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
        self.epsilon = float(epsilon)
        self.epochs = epochs
        self.batch_size = batch_size
        self.sampling_rate = sampling_rate
        self.max_grad_norm = max_grad_norm
        self.frequency_share = frequency_share
        self.log_frequency = bool(log_frequency)
        self.embedding_dim = embedding_dim
        self.generator_dims = tuple(generator_dims)
        self.discriminator_dims = tuple(discriminator_dims)
        self.generator_lr = float(generator_lr)
        self.discriminator_lr = float(discriminator_lr)
        self.weight_decay = float(weight_decay)
        self.dropout = float(dropout)
        self.device = resolve_device(device)
        self.seed = seed
        self.progress = progress
        # Fitted state.
        self.transformer: TableTransformer | None = None
        self.sampler: ConditionalSampler | None = None
        self.plan: TrainingPlan | None = None
        self.generator: Generator | None = None
        self.discriminator: Discriminator | None = None
        self.provenance = Provenance()
        self.log: TrainingLog | None = None

    # -- fitting --------------------------------------------------------------------------
    def make_plan(self, gate: Any, n_categorical_columns: int) -> TrainingPlan:
        """The plan this model would charge on `gate` (public; reads no record).  The plan's ε
        is at the δ the filter converts at (the policy's δ less any ``delta_reserve``)."""
        delta = getattr(gate.filter, "conversion_delta", gate.metadata.delta)
        return make_plan(epsilon=self.epsilon, delta=delta, order=run_order(self.epsilon, delta, gate.filter),
                         max_records=gate.policy.max_records, epochs=self.epochs, batch_size=self.batch_size,
                         sampling_rate=self.sampling_rate, max_grad_norm=self.max_grad_norm,
                         frequency_share=self.frequency_share, n_categorical_columns=n_categorical_columns)

    @staticmethod
    def _gate_of(table: Any, gate: Any) -> Any:
        from dpsynth.table import PrivateTable

        if not isinstance(table, PrivateTable):
            raise TypeError(f"DP-CTGAN trains on a dpsynth.table.PrivateTable (its private steps run inside the "
                            f"table), not on a {type(table).__name__}")
        if gate is not None and gate is not table.gate:
            raise ValueError("the gate passed to fit is not the table's gate")
        return table.gate

    def preflight(self, table: Any, gate: Any = None) -> TrainingPlan:
        """Every check `fit` makes before its first measurement, on public facts only (the
        schema, the policy's bound on n, the ledger); reads no record, charges nothing.

        Raises what `fit` would (PlanError, BudgetExceeded); returns the plan fit would charge."""
        gate = self._gate_of(table, gate)
        return self._checked_plan(table, gate)[1]

    def _checked_plan(self, table: Any, gate: Any) -> tuple[TableTransformer, TrainingPlan]:
        if gate.relation is not NeighbouringRelation.ADD_OR_REMOVE_ONE:
            raise PlanError(
                "DP-CTGAN's DP-SGD is analysed under add/remove-one (Poisson sampling); the policy's relation "
                f"is {gate.relation.value}")
        transformer = table.layout()
        plan = self.make_plan(gate, len(transformer.categorical_blocks))
        # Check the whole plan fits before anything is charged: the counts alone must not be
        # spent on a run whose DP-SGD part the gate would then refuse.
        costs = gate.spent_costs()
        gate_cost = plan.cost(gate.filter.order)
        if not gate.filter.admits(costs, gate_cost):
            raise BudgetExceeded(
                f"DP-CTGAN plan needs RDP {gate_cost:.6g} at order {gate.filter.order:.4g} (epsilon {plan.epsilon:g}) "
                f"but only {gate.filter.remaining(costs):.6g} remains; nothing was charged",
                requested=gate_cost, remaining=gate.filter.remaining(costs), budget=gate.filter.budget,
                order=gate.filter.order, epsilon_spent=gate.filter.epsilon_spent(costs),
                epsilon_budget=gate.filter.epsilon, delta=gate.filter.delta)
        run_filter = getattr(gate, "run_filter", None)
        if run_filter is not None:
            run_cost = math.fsum(run_filter.cost(e) for e in plan.events)
            if not run_filter.admits([], run_cost):
                raise PlanError(
                    f"DP-CTGAN plan (epsilon {plan.epsilon:g}) exceeds the policy's per-run cap "
                    f"max_epsilon_per_run = {run_filter.epsilon:g}; nothing was charged")
        DiscriminatorSpec(self.discriminator_dims, self.dropout)  # a bad architecture fails here, uncharged
        return transformer, plan

    def fit(self, table: Any, gate: Any = None, *, actor: str | None = None) -> "DPCTGAN":
        """Charge the whole plan, measure the noisy counts, train for exactly the planned steps
        (each step's private part inside the table), then seal the model in the ledger."""
        gate = self._gate_of(table, gate)
        transformer, plan = self._checked_plan(table, gate)
        blocks = transformer.categorical_blocks
        seeds = np.random.SeedSequence(self.seed).generate_state(2, dtype=np.uint32) if self.seed is not None \
            else None
        run_id = f"dpctgan-{uuid.uuid4().hex}"
        if blocks:
            counts = table.noisy_category_counts(
                None, plan.frequency_noise_multiplier,
                purpose="DP-CTGAN: noisy category counts for conditional sampling",
                generator=self.generator_name, run_id=run_id, parameters={"columns": [b.facts.name for b in blocks]})
        else:
            counts = []
        sampler = ConditionalSampler(blocks, counts, log_frequency=self.log_frequency)
        spec = DiscriminatorSpec(self.discriminator_dims, self.dropout)
        session = table.dpsgd_session(
            discriminator=spec, conditioning=sampler.real_conditioning() if blocks else None,
            sampling_rate=plan.sampling_rate, noise_multiplier=plan.noise_multiplier, steps=plan.steps,
            max_grad_norm=plan.max_grad_norm, purpose="DP-CTGAN: DP-SGD on the discriminator (whole plan)",
            generator=self.generator_name, run_id=run_id,
            parameters={"max_grad_norm": plan.max_grad_norm, "batch_size": plan.batch_size, "epochs": plan.epochs,
                        "max_records": plan.max_records},
            device=self.device)
        # From here the privacy is spent: a failure below keeps the ledger entries.
        torch_seed = None if seeds is None else int(seeds[0])
        nets = self._networks(transformer, sampler, spec, session.input_dim, torch_seed)
        post = torch.Generator(device=self.device)
        post.manual_seed(secrets.randbits(63) if seeds is None else int(seeds[1]))
        log = train(nets, sampler, transformer, plan, session, post=post, device=self.device,
                    generator_lr=self.generator_lr, discriminator_lr=self.discriminator_lr,
                    weight_decay=self.weight_decay, progress=self.progress)
        session.close()
        if log.steps_done != plan.steps:  # the charged event is the steps run, exactly
            raise RuntimeError(f"trained {log.steps_done} steps, charged {plan.steps}")
        self.transformer, self.sampler, self.plan, self.generator = transformer, sampler, plan, nets.generator
        self.discriminator = nets.discriminator
        self.log = log
        self._seal(gate, table, run_id, actor)
        return self

    def _networks(self, transformer: TableTransformer, sampler: ConditionalSampler, spec: DiscriminatorSpec,
                  input_dim: int, seed: int | None) -> Networks:
        init = torch.Generator()
        init.manual_seed(secrets.randbits(63) if seed is None else seed)
        # Initialisation from an explicit generator (public randomness), then moved to the device.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=init)))
            g = Generator(self.embedding_dim + sampler.dim, self.generator_dims, transformer.dim)
            d = spec.build(input_dim)
        return Networks(g.to(self.device), d.to(self.device), self.embedding_dim)

    # -- receipts -------------------------------------------------------------------------
    def epsilon_spent(self) -> float:
        """The ε of this run on its own: the full-curve RDP ε at the policy's δ of the
        events its receipts pay for (noisy counts + the whole DP-SGD plan)."""
        self._require_fitted()
        return self.plan.epsilon_after(self.plan.steps)

    def _expected_events(self) -> list[str]:
        self._require_fitted()
        return [e.to_json() for e in (self.plan.frequency_event, self.plan.dpsgd_event) if e is not None]

    def _release_digests(self) -> dict[int, str] | None:
        from dpsynth.table.commitments import release_digest

        charges = self.provenance.charges
        if self.plan.frequency_event is None or not charges:
            return {}
        return {charges[0].sequence: release_digest([np.asarray(c, dtype=np.float64)
                                                     for c in self.sampler.noisy_counts])}

    def _require_fitted(self) -> None:
        if self.generator is None or self.plan is None:
            raise NotFitted("fit (or load) the model first")

    # -- sampling (post-processing) -------------------------------------------------------
    def sample(self, n: int, where: Mapping[str, Any] | None = None, *, seed: int | None = None,
               gate: Any = None, batch: int = 4096) -> pd.DataFrame:
        """n synthetic rows.

        `where={column: value}` fixes the conditional vector of one categorical column (the
        column then holds `value`; the others follow the generator); `where={column: [v1, v2]}`
        draws each row's value among those, in proportion to the noisy category frequencies
        (uniformly when they are all zero).  Refuses a model whose receipts do not verify."""
        self._require_fitted()
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be an int >= 0, got {n!r}")
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
        frame = self.transformer.inverse(features)
        if condition is not None:
            values = np.empty(len(condition[4]), dtype=object)
            values[:] = condition[4]
            chosen = np.concatenate(picks) if picks else np.zeros(0, np.int64)
            frame[condition[3]] = pd.Series(values[chosen], dtype=object)
        return frame

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

    # -- state (what the seal covers, what a file holds) -------------------------------------
    def _state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """JSON metadata (layout, noisy counts, plan) and the generator's weights.  Nothing in it
        is raw data; the discriminator is not kept."""
        self._require_fitted()
        meta = {
            "config": {k: getattr(self, k) for k in (
                "epsilon", "epochs", "batch_size", "sampling_rate", "max_grad_norm", "frequency_share",
                "log_frequency", "embedding_dim", "generator_lr", "discriminator_lr", "weight_decay", "dropout")}
            | {"generator_dims": list(self.generator_dims), "discriminator_dims": list(self.discriminator_dims)},
            "transformer": self.transformer.to_dict(),
            "sampler": self.sampler.to_dict(),
            "plan": self.plan.to_dict(),
        }
        arrays = {f"generator/{k}": v.detach().cpu() for k, v in self.generator.state_dict().items()}
        return meta, arrays

    @classmethod
    def _from_state(cls, meta: dict[str, Any], arrays: dict[str, Any], device: Any) -> "DPCTGAN":
        cfg = dict(meta["config"])
        cfg["generator_dims"] = tuple(cfg["generator_dims"])
        cfg["discriminator_dims"] = tuple(cfg["discriminator_dims"])
        model = cls(**cfg, device=device, progress=False)
        model.transformer = TableTransformer.from_dict(meta["transformer"])
        s = meta["sampler"]
        model.sampler = ConditionalSampler(model.transformer.categorical_blocks,
                                           [np.asarray(c, dtype=np.float64) for c in s["noisy_counts"]],
                                           log_frequency=s["log_frequency"], max_weight=s["max_weight"])
        model.plan = TrainingPlan.from_dict(meta["plan"])
        g = Generator(model.embedding_dim + model.sampler.dim, model.generator_dims, model.transformer.dim)
        state = {k.split("/", 1)[1]: torch.as_tensor(v) for k, v in arrays.items() if k.startswith("generator/")}
        g.load_state_dict(state)
        model.generator = g.to(model.device)
        return model

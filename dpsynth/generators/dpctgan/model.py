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
from typing import Any

import numpy as np
import torch

from accountant.events import NeighbouringRelation

from dpsynth.nn.discriminator import DiscriminatorSpec
from dpsynth.nn.layout import TableTransformer

from ..conditional_gan import ConditionalGan, check_plan_fits, resolve_device
from ..provenance import Provenance
from ..sealed import NotFitted
from .conditional import ConditionalSampler
from .networks import Discriminator, Generator
from .plan import PlanError, TrainingPlan, make_plan, run_order
from .trainer import Networks, TrainingLog, train

__all__ = ["DPCTGAN", "NotFitted"]

FORMAT = "dpsynth.dpctgan/2"


class DPCTGAN(ConditionalGan):
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
        self.schema = None  # the table's schema: how it writes its values
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

    def preflight(self, table: Any, gate: Any = None) -> TrainingPlan:
        """Every check `fit` makes before its first measurement, on public facts only (the
        schema, the policy's bound on n, the ledger); reads no record, charges nothing.

        Raises what `fit` would (PlanError, BudgetExceeded); returns the plan fit would charge."""
        gate = self._gate_of(table, gate)
        return self._checked_plan(table, gate)[1]

    def _checked_plan(self, table: Any, gate: Any) -> tuple[TableTransformer, TrainingPlan]:
        if getattr(table, "in_memory", True) is False:
            from dpsynth.table import NeedsTableInMemory

            raise NeedsTableInMemory("DP-CTGAN trains with DP-SGD on Poisson-sampled rows: it needs the table in memory (a pandas DataFrame), "
                                     "not a DuckDB source; MST, AIM and Independent run on DuckDB sources. "
                                     "Nothing was charged.")
        if gate.relation is not NeighbouringRelation.ADD_OR_REMOVE_ONE:
            raise PlanError(
                "DP-CTGAN's DP-SGD is analysed under add/remove-one (Poisson sampling); the policy's relation "
                f"is {gate.relation.value}")
        transformer = table.layout()
        plan = self.make_plan(gate, len(transformer.categorical_blocks))
        check_plan_fits(gate, plan, "DP-CTGAN", PlanError)
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
        self.schema = table.schema
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
        } | self._schema_meta()
        arrays = {f"generator/{k}": v.detach().cpu() for k, v in self.generator.state_dict().items()}
        return meta, arrays

    @classmethod
    def _from_state(cls, meta: dict[str, Any], arrays: dict[str, Any], device: Any) -> "DPCTGAN":
        cfg = dict(meta["config"])
        cfg["generator_dims"] = tuple(cfg["generator_dims"])
        cfg["discriminator_dims"] = tuple(cfg["discriminator_dims"])
        model = cls(**cfg, device=device, progress=False)
        model.transformer = TableTransformer.from_dict(meta["transformer"])
        model.schema = cls._schema_from(meta)
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

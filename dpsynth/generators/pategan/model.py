"""PATEGAN: PATE-GAN (Jordon, Yoon, van der Schaar 2019) with data-independent accounting.

    model = PATEGAN(epsilon=1.0).fit(table)          # table: a PrivateTable on the dataset's gate
    rows = model.sample(1000, where={"income": ">50K"})
    model.save("adult.pategan"); PATEGAN.load("adult.pategan", trust="ledger.pub").sample(10)

The private part runs inside the private table (`PrivateTable.pate_session`):
k teachers on k disjoint partitions fixed once by a keyed hash of each record,
each partition in a canonical order, trained continuously against generator
samples; only noisy vote histograms leave.  The whole plan — the noisy category
counts and every one of the Q label queries, `GNMaxEvent(σ, Q)` — is fixed from
public numbers and charged before any teacher trains.  The student sees only
generator samples labelled by the noisy votes; the generator learns only through
the student (and CTGAN's condition loss on the noisy counts).  The layout comes
from the schema.  See proofs/pategan.md for the privacy statement.

`PATEGAN(epsilon=1.0, target="income")` also asks PATE's label teachers (one linear
classifier of the target per partition, inside the table) to label rows of the
trained generator, with `label_share` of the same Q queries; the labeller fitted
to those noisy votes draws the target when sampling.  On Adult this is what makes
the synthetic rows useful for predicting the target (benchmarks/results/pategan_adult.md).
"""

from __future__ import annotations

import math
import secrets
import uuid
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from accountant.events import NeighbouringRelation

from dpsynth.nn.layout import TableTransformer
from dpsynth.nn.teacher import TeacherSpec

from ..conditional_gan import ConditionalGan, check_plan_fits, resolve_device
from ..dpctgan.conditional import ConditionalSampler
from ..dpctgan.networks import Generator
from ..dpctgan.plan import run_order
from ..provenance import Provenance
from .plan import PatePlan, PlanError, make_pate_plan
from .student import Student
from .labeller import Labeller
from .trainer import PateLog, PateNetworks, fit_labeller, train

__all__ = ["PATEGAN"]

FORMAT = "dpsynth.pategan/1"


def _dims(name: str, dims: Any) -> tuple[int, ...]:
    dims = tuple(dims)
    if not dims or any(isinstance(d, bool) or not isinstance(d, int) or not 1 <= d <= 4096 for d in dims):
        raise ValueError(f"{name} must be a non-empty tuple of ints in 1..4096, got {dims!r}")
    return dims


def _count(name: str, value: Any, low: int = 1, high: int = 100_000) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an int in {low}..{high}, got {value!r}")
    return value


def _rate(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and 0 < value < 1):
        raise ValueError(f"{name} must be a number in (0, 1), got {value!r}")
    return float(value)


class PATEGAN(ConditionalGan):
    """PATE-GAN whose teachers live inside the private table.

    Args:
        epsilon: this run's share of the dataset's budget, at the policy's δ.
        teachers: k (default: max_records / 150, between 2 and 1000 — a public bound).
        queries: Q, the label queries of the whole run (default: as many as the budget buys
            at vote noise σ = k / label_noise).
        queries_per_iteration: label queries per iteration (Q / this = the iterations).
        label_noise: k/σ when Q is not given (3: a unanimous vote is wrong 1.7 % of the time).
        teacher_hidden, teacher_lr, teacher_batch, teacher_steps: the teachers (trained inside
            the table, `teacher_steps` Adam steps per iteration).
        student_dims, student_lr, student_steps: the student (on released labels only).
        generator_dims, embedding_dim, generator_lr, generator_steps, batch_size: the generator.
        frequency_share: fraction of the run's RDP budget for the noisy category counts.
        target: a categorical column to label with PATE's label teachers (name the column a model
            trained on the synthetic data will predict): `label_share` of the Q queries go to k
            linear classifiers of it, one per partition, asked about the trained generator's rows;
            the labeller fitted to their noisy votes draws that column at sampling time.  None
            (default): the discriminator teachers only.
        device: "auto" (GPU when present), "cpu", "cuda", …
        seed: reproducible post-processing randomness; the private randomness is the table's.
    """

    generator_name = "pategan"
    FORMAT = FORMAT

    def __init__(self, *, epsilon: float, teachers: int | None = None, queries: int | None = None,
                 queries_per_iteration: int = 32, label_noise: float = 3.0, teacher_hidden: tuple[int, ...] = (64,),
                 teacher_lr: float = 1e-3, teacher_batch: int = 64, teacher_steps: int = 5,
                 student_dims: tuple[int, ...] = (128, 128), student_lr: float = 1e-3, student_steps: int = 20,
                 generator_dims: tuple[int, ...] = (128, 128), embedding_dim: int = 64, generator_lr: float = 2e-4,
                 generator_steps: int = 20, batch_size: int = 256, frequency_share: float = 0.1,
                 log_frequency: bool = True, target: str | None = None, label_share: float = 0.8,
                 device: str | torch.device = "auto", seed: int | None = None, progress: bool = True) -> None:
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not (
                math.isfinite(epsilon) and epsilon > 0):
            raise PlanError(f"epsilon must be a finite number > 0, got {epsilon!r}")
        self.epsilon = float(epsilon)
        self.teachers = None if teachers is None else _count("teachers", teachers, 2, 1000)
        self.queries = None if queries is None else _count("queries", queries, 1, 100_000_000)
        self.queries_per_iteration = _count("queries_per_iteration", queries_per_iteration)
        self.label_noise = label_noise
        self.teacher_hidden = _dims("teacher_hidden", teacher_hidden)
        self.teacher_lr = _rate("teacher_lr", teacher_lr)
        self.teacher_batch = _count("teacher_batch", teacher_batch, 1, 65536)
        self.teacher_steps = _count("teacher_steps", teacher_steps, 1, 10_000)
        self.student_dims = _dims("student_dims", student_dims)
        self.student_lr = _rate("student_lr", student_lr)
        self.student_steps = _count("student_steps", student_steps, 0, 100_000)
        self.generator_dims = _dims("generator_dims", generator_dims)
        self.embedding_dim = _count("embedding_dim", embedding_dim, 1, 4096)
        self.generator_lr = _rate("generator_lr", generator_lr)
        self.generator_steps = _count("generator_steps", generator_steps, 0, 100_000)
        self.batch_size = _count("batch_size", batch_size, 1, 1_000_000)
        self.frequency_share = frequency_share
        self.log_frequency = bool(log_frequency)
        if target is not None and not isinstance(target, str):
            raise TypeError(f"target must be a column name (str) or None, got {target!r}")
        self.target = target
        if isinstance(label_share, bool) or not isinstance(label_share, (int, float)) or not (
                math.isfinite(label_share) and 0 < label_share < 1):
            raise PlanError(f"label_share must be a number in (0, 1), got {label_share!r}")
        self.label_share = float(label_share)
        self.device = resolve_device(device)
        self.seed = seed
        self.progress = progress
        # Fitted state.
        self.transformer: TableTransformer | None = None
        self.schema = None  # the table's schema: how it writes its values
        self.sampler: ConditionalSampler | None = None
        self.plan: PatePlan | None = None
        self.generator: Generator | None = None
        self.student: Student | None = None
        self.labeller: Labeller | None = None
        self.provenance = Provenance()
        self.log: PateLog | None = None

    def _teacher_spec(self) -> TeacherSpec:
        return TeacherSpec(self.teacher_hidden, self.teacher_lr, self.teacher_batch)

    # -- the plan --------------------------------------------------------------------------
    def make_plan(self, gate: Any, n_categorical_columns: int) -> PatePlan:
        """The plan this model would charge on `gate` (public; reads no record)."""
        delta = getattr(gate.filter, "conversion_delta", gate.metadata.delta)
        return make_pate_plan(epsilon=self.epsilon, delta=delta, order=run_order(self.epsilon, delta, gate.filter),
                              max_records=gate.policy.max_records, teachers=self.teachers, queries=self.queries,
                              queries_per_iteration=self.queries_per_iteration, label_noise=self.label_noise,
                              frequency_share=self.frequency_share, n_categorical_columns=n_categorical_columns,
                              relation=gate.relation, label_share=self.label_share if self.target else 0.0)

    def preflight(self, table: Any, gate: Any = None) -> PatePlan:
        """Every check `fit` makes before its first measurement, on public facts only; reads no
        record, charges nothing.  Raises what `fit` would; returns the plan fit would charge."""
        gate = self._gate_of(table, gate)
        return self._checked_plan(table, gate)[1]

    def _checked_plan(self, table: Any, gate: Any) -> tuple[TableTransformer, PatePlan]:
        if getattr(table, "in_memory", True) is False:
            from dpsynth.table import NeedsTableInMemory

            raise NeedsTableInMemory("PATE-GAN trains its teachers on disjoint partitions of the rows: it needs the table in memory (a pandas DataFrame), "
                                     "not a DuckDB source; MST, AIM and Independent run on DuckDB sources. "
                                     "Nothing was charged.")
        transformer = table.layout()
        self._label_block(transformer)  # an unknown or numeric target fails here, uncharged
        plan = self.make_plan(gate, len(transformer.categorical_blocks))
        if self.target is not None and plan.label_queries < 1:
            raise PlanError(f"target {self.target!r}: the plan leaves no label query for the label teachers "
                            f"(queries = {plan.queries}, label_share = {self.label_share:g}); raise queries or "
                            "label_share. Nothing was charged")
        check_plan_fits(gate, plan, "PATE-GAN", PlanError)
        self._teacher_spec()  # a bad teacher architecture fails here, uncharged
        return transformer, plan

    def _label_block(self, transformer: TableTransformer) -> tuple[int, int] | None:
        """(start, end) of the target's one-hot block, from the public layout; None without one."""
        if self.target is None:
            return None
        from dpsynth.nn.layout import CategoricalBlock

        for b in transformer.blocks:
            if b.facts.name == self.target:
                if not isinstance(b, CategoricalBlock) or b.width < 2:
                    raise PlanError(f"target {self.target!r} must be a categorical column with at least two "
                                    "categories (the label teachers classify it); nothing was charged")
                return b.start, b.end
        raise PlanError(f"target {self.target!r} is not a column of the table; nothing was charged")

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, table: Any, gate: Any = None, *, actor: str | None = None) -> "PATEGAN":
        """Charge the whole plan, then train: teachers and votes inside the table, the student and
        the generator on released votes only; seal the model in the ledger."""
        gate = self._gate_of(table, gate)
        transformer, plan = self._checked_plan(table, gate)
        blocks = transformer.categorical_blocks
        seeds = np.random.SeedSequence(self.seed).generate_state(2, dtype=np.uint32) if self.seed is not None \
            else None
        run_id = f"pategan-{uuid.uuid4().hex}"
        if blocks:
            counts = table.noisy_category_counts(
                None, plan.frequency_noise_multiplier, purpose="PATE-GAN: noisy category counts for conditional "
                "generation", generator=self.generator_name, run_id=run_id,
                parameters={"columns": [b.facts.name for b in blocks]})
        else:
            counts = []
        sampler = ConditionalSampler(blocks, counts, log_frequency=self.log_frequency)
        session = table.pate_session(
            teachers=plan.teachers, teacher=self._teacher_spec(), noise_multiplier=plan.noise_multiplier,
            queries=plan.queries, purpose="PATE-GAN: teacher votes (every label query of the run)",
            generator=self.generator_name, run_id=run_id,
            parameters={"queries_per_iteration": plan.queries_per_iteration, "iterations": plan.iterations,
                        "teacher_steps": self.teacher_steps, "label_queries": plan.label_queries},
            device=self.device, label_column=self.target)
        # From here the privacy is spent: a failure below keeps the ledger entries.
        nets = self._networks(transformer, sampler, None if seeds is None else int(seeds[0]))
        post = torch.Generator(device=self.device)
        post.manual_seed(secrets.randbits(63) if seeds is None else int(seeds[1]))
        log = train(nets, sampler, transformer, plan, session, post=post, device=self.device,
                    batch_size=self.batch_size, teacher_steps=self.teacher_steps, student_steps=self.student_steps,
                    generator_steps=self.generator_steps, student_lr=self.student_lr,
                    generator_lr=self.generator_lr, progress=self.progress)
        labeller = None
        if plan.label_queries:
            labeller = fit_labeller(nets, sampler, transformer, plan, session, post=post, device=self.device,
                                    block=self._label_block(transformer))
            log.queries_done += plan.label_queries
        session.close()
        if log.queries_done != plan.queries:  # the charged event is the queries asked, exactly
            raise RuntimeError(f"asked {log.queries_done} label queries, charged {plan.queries}")
        self.transformer, self.sampler, self.plan = transformer, sampler, plan
        self.schema = table.schema
        self.generator, self.student, self.log = nets.generator, nets.student, log
        self.labeller = labeller
        self._seal(gate, table, run_id, actor)
        return self

    def _networks(self, transformer: TableTransformer, sampler: ConditionalSampler, seed: int | None) -> PateNetworks:
        init = torch.Generator()
        init.manual_seed(secrets.randbits(63) if seed is None else seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=init)))
            g = Generator(self.embedding_dim + sampler.dim, self.generator_dims, transformer.dim)
            s = Student(transformer.dim, self.student_dims)
        return PateNetworks(g.to(self.device), s.to(self.device), self.embedding_dim)

    # -- receipts --------------------------------------------------------------------------
    def epsilon_spent(self) -> float:
        """The full-curve ε at the policy's δ of the run's events (counts + every label query)."""
        self._require_fitted()
        return self.plan.epsilon_after(self.plan.queries)

    def _expected_events(self) -> list[str]:
        self._require_fitted()
        return [e.to_json() for e in self.plan.events]

    # -- state (what the seal covers, what a file holds) -------------------------------------
    def config(self) -> dict[str, Any]:
        return {"epsilon": self.epsilon, "teachers": self.teachers, "queries": self.queries,
                "queries_per_iteration": self.queries_per_iteration, "label_noise": self.label_noise,
                "teacher_hidden": list(self.teacher_hidden), "teacher_lr": self.teacher_lr,
                "teacher_batch": self.teacher_batch, "teacher_steps": self.teacher_steps,
                "student_dims": list(self.student_dims), "student_lr": self.student_lr,
                "student_steps": self.student_steps, "generator_dims": list(self.generator_dims),
                "embedding_dim": self.embedding_dim, "generator_lr": self.generator_lr,
                "generator_steps": self.generator_steps, "batch_size": self.batch_size,
                "frequency_share": self.frequency_share, "log_frequency": self.log_frequency} | (
                    {"target": self.target, "label_share": self.label_share} if self.target else {})

    def _state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """JSON metadata (layout, noisy counts, plan) and the generator's weights.  Nothing in it
        is raw data; neither the teachers (they never left the table) nor the student are kept."""
        self._require_fitted()
        meta = {"config": self.config(), "transformer": self.transformer.to_dict(), "sampler": self.sampler.to_dict(),
                "plan": self.plan.to_dict()} | self._schema_meta()
        arrays = {f"generator/{k}": v.detach().cpu() for k, v in self.generator.state_dict().items()}
        if self.labeller is not None:
            arrays |= {f"labeller/{k}": v.detach().cpu() for k, v in self.labeller.state_dict().items()}
        return meta, arrays

    @classmethod
    def _from_state(cls, meta: dict[str, Any], arrays: dict[str, Any], device: Any) -> "PATEGAN":
        cfg = dict(meta["config"])
        for key in ("teacher_hidden", "student_dims", "generator_dims"):
            cfg[key] = tuple(cfg[key])
        model = cls(**cfg, device=device, progress=False)
        model.transformer = TableTransformer.from_dict(meta["transformer"])
        model.schema = cls._schema_from(meta)
        s = meta["sampler"]
        model.sampler = ConditionalSampler(model.transformer.categorical_blocks,
                                           [np.asarray(c, dtype=np.float64) for c in s["noisy_counts"]],
                                           log_frequency=s["log_frequency"], max_weight=s["max_weight"])
        model.plan = PatePlan.from_dict(meta["plan"])
        g = Generator(model.embedding_dim + model.sampler.dim, model.generator_dims, model.transformer.dim)
        state = {k.split("/", 1)[1]: torch.as_tensor(v) for k, v in arrays.items() if k.startswith("generator/")}
        g.load_state_dict(state)
        model.generator = g.to(model.device)
        block = model._label_block(model.transformer)
        labels = {k.split("/", 1)[1]: torch.as_tensor(v) for k, v in arrays.items() if k.startswith("labeller/")}
        if (block is None) != (not labels) or (block is not None) != (model.plan.label_queries > 0):
            raise ValueError("model file: a labeller must come with a target and label queries, and only then")
        if block is not None:
            labeller = Labeller(model.transformer.dim, block)
            labeller.load_state_dict(labels)  # strict: a crafted shape or name fails here
            model.labeller = labeller
        return model

    # -- sampling (post-processing) ----------------------------------------------------------
    def _post_features(self, features: np.ndarray, rng: torch.Generator) -> np.ndarray:
        """With a labeller, each row's target drawn from it (module `labeller`)."""
        if self.labeller is None:
            return features
        cpu = torch.Generator()
        cpu.manual_seed(int(torch.randint(0, 2**62, (1,), generator=rng, device=rng.device)))
        return self.labeller.relabel(features, cpu)

    def sample(self, n: int, where: Any = None, *, seed: int | None = None, gate: Any = None, batch: int = 4096,
               proportions: Any = None) -> Any:
        """As `ConditionalGan.sample`; with a labeller, `where` on the target keeps the rows whose
        drawn label is the value asked (exactly P(features | label), by rejection)."""
        if self.labeller is None or not where or proportions is not None or not isinstance(where, Mapping) \
                or self.target not in where:
            return super().sample(n, where, seed=seed, gate=gate, batch=batch, proportions=proportions)
        return self._sample_target(n, where, seed=seed, gate=gate, batch=batch)

    def _sample_target(self, n: int, where: Mapping, *, seed: int | None, gate: Any, batch: int) -> Any:
        import pandas as pd

        if len(where) != 1:
            raise ValueError("where: condition on one categorical column at a time")
        self._condition(where)  # the values are checked against the target's categories
        wanted = where[self.target]
        wanted = list(wanted) if isinstance(wanted, (list, tuple)) else [wanted]
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be an int >= 0, got {n!r}")
        rng = np.random.default_rng(seed)
        kept, have, drawn = [], 0, 0
        while have < n:
            if drawn > 1000 * max(n, 1000):
                raise ValueError(f"where: the labeller gives {self.target} in {wanted!r} too rarely to sample "
                                 f"{n} rows (fewer than 1 in 1000)")
            m = min(max(2 * (n - have), 1024), 1_000_000)
            frame = super().sample(m, seed=int(rng.integers(2**62)), gate=gate, batch=batch)
            drawn += m
            hit = frame[frame[self.target].isin(wanted)]
            kept.append(hit)
            have += len(hit)
        return pd.concat(kept, ignore_index=True).iloc[:n].reset_index(drop=True)

    @staticmethod
    def relation_supported(relation: NeighbouringRelation) -> bool:
        """Both relations: the table scales the vote noise for replace-one (proofs/gnmax.md)."""
        return True

"""DP-SGD inside the private table: category counts, and the private step of each update.

* `noisy_category_counts(columns, noise_multiplier)`: one histogram per
  categorical block of the table's own layout (built from its schema), released
  together.  One record moves one cell of each of the k histograms (checked on
  the rows before release): Δ₂ = √k under add/remove (√(2k) under replace-one).
  Discrete Gaussian noise of scale σ = z·Δ₂ from the table's source, drawn
  before the rows are read; charged as GaussianEvent(z) (the discrete Gaussian
  on integer counts is at least as private as the continuous one at the same
  σ: Canonne, Kamath, Steinke 2020, Thm 4).

* `dpsgd_session(...)`: charges ONE `PoissonSubsampledGaussianEvent(q, σ, T)`
  for the whole plan, writes an `open` entry, and returns a `DPSGDSession`
  whose `step(parameters)` runs the private part of one DP-SGD update on a
  vetted discriminator the table builds itself (`dpsynth.nn`): the Poisson
  sample (each record independently with probability ≤ q), per-record
  gradients (Opacus' `GradSampleModule`), clipping to C, the sum, and
  Gaussian noise N(0, σ²C²) from the table's random source.  Only the noisy
  clipped sum leaves; exactly T steps are admitted; `close()` writes the
  `release` entry committing to every step's output.  The caller passes only
  numbers (the discriminator's current parameters, public post-processing of
  earlier noisy sums); no caller code runs on the rows.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, Mapping, Sequence

import numpy as np

from accountant.events import GaussianEvent, NeighbouringRelation, PoissonSubsampledGaussianEvent

from .commitments import RunningDigest
from .identity import keyed_uniform_words, record_keys
from .measurement import Measurement
from .params import positive
from .sensitivity import check_clipped_norms, check_one_hot_rows

__all__ = ["DPSGDMixin", "DPSGDSession", "AccessError", "MAX_STEPS"]

MAX_STEPS = 10_000_000


class AccessError(RuntimeError):
    """A session was asked for more than it was paid for (or used after it closed)."""


def _layout(table: Any) -> Any:
    """The layout of the table's public schema (categories and bounds; bins are not needed)."""
    from dpsynth.nn.layout import TableTransformer

    return TableTransformer.from_schema(table.schema)


def _poisson_threshold(q: float) -> int | None:
    """Words w (uniform in [0, 2^64)) with w < T are kept: probability floor(q·2^64)/2^64 <= q.
    None means every record (q = 1)."""
    if q >= 1.0:
        return None
    return int(Fraction(q) * 2**64)


class DPSGDMixin:
    """`PrivateTable`'s DP-SGD path."""

    def layout(self) -> Any:
        """The table's feature layout (`dpsynth.nn.TableTransformer`), from its public schema."""
        return _layout(self)

    def noisy_category_counts(self, columns: Sequence[str] | None, noise_multiplier: float, *, purpose: str,
                              generator: str | None = None, run_id: str | None = None,
                              parameters: dict | None = None) -> list[np.ndarray]:
        """Noisy counts of the categories of each categorical column of the layout (all of
        them when `columns` is None, else exactly those, in layout order), as floats."""
        z = positive(noise_multiplier, "noise_multiplier")
        layout = _layout(self)
        blocks = list(layout.categorical_blocks)
        if columns is not None:
            names = list(columns)
            known = [b.facts.name for b in blocks]
            for n in names:
                if n not in known:
                    raise ValueError(f"column {n!r} is not a categorical column of the schema")
            if len(set(names)) != len(names):
                raise ValueError("columns names a column twice")
            blocks = [b for b in blocks if b.facts.name in names]
        if not blocks:
            raise ValueError("no categorical column to count")
        k = len(blocks)
        unit = math.sqrt(2.0) if self.relation is NeighbouringRelation.REPLACE_ONE else 1.0
        delta_2 = unit * math.sqrt(k)
        sigma = z * delta_2
        spec = Measurement(kind="category_counts_layout",
                           query={"columns": [b.facts.name for b in blocks], "widths": [b.width for b in blocks],
                                  "noise_multiplier": z},
                           events=(GaussianEvent(z, relation=self.relation),),
                           sensitivity=delta_2, norm="l2")
        from dpsynth.noise.discrete_gaussian import sample_discrete_gaussian

        source = self._source
        widths = [b.width for b in blocks]

        def draw() -> np.ndarray:
            return np.asarray(sample_discrete_gaussian(sigma, sum(widths), source), dtype=np.int64)

        def exact(rows: Any) -> np.ndarray:
            features = layout.transform(rows.frame)
            check_one_hot_rows(features, blocks, "category counts")
            return np.concatenate([features[:, b.start:b.end].sum(axis=0, dtype=np.float64) for b in blocks]
                                  ).round().astype(np.int64)

        def release(counts: np.ndarray, noise: np.ndarray) -> list[np.ndarray]:
            noisy = (counts + noise).astype(np.float64)
            return list(np.split(noisy, np.cumsum(widths)[:-1]))

        return self._measure(spec, purpose=purpose, generator=generator, run_id=run_id, parameters=parameters,
                             noise=draw, exact=exact, release=release)

    def dpsgd_session(self, *, discriminator: Any, conditioning: Any = None, sampling_rate: float,
                      noise_multiplier: float, steps: int, max_grad_norm: float, purpose: str,
                      generator: str | None = None, run_id: str | None = None, parameters: dict | None = None,
                      device: Any = "cpu") -> "DPSGDSession":
        """Charge the whole DP-SGD plan and open a session (see the module docstring).

        `discriminator` is a `dpsynth.nn.DiscriminatorSpec`; `conditioning` a
        `dpsynth.nn.RealConditioning` over this table's layout (or None)."""
        import torch

        from dpsynth.nn.conditioning import RealConditioning
        from dpsynth.nn.discriminator import DiscriminatorSpec

        # Exact types, and the table's own copies built from their public numbers: a subclass (or
        # an instance whose `build` / `condition` was replaced) would be caller code run on the
        # rows — attack 2 of proofs/threat_model.md through the vetted specs.
        if type(discriminator) is not DiscriminatorSpec:
            raise TypeError("discriminator must be a dpsynth.nn.DiscriminatorSpec (the table builds the network), "
                            f"not a {type(discriminator).__module__}.{type(discriminator).__name__}")
        if conditioning is not None and type(conditioning) is not RealConditioning:
            raise TypeError("conditioning must be a dpsynth.nn.RealConditioning or None, not a "
                            f"{type(conditioning).__module__}.{type(conditioning).__name__}")
        discriminator = DiscriminatorSpec(tuple(int(h) for h in discriminator.hidden), float(discriminator.dropout),
                                          float(discriminator.negative_slope))
        if self.relation is not NeighbouringRelation.ADD_OR_REMOVE_ONE:
            raise ValueError("Poisson-subsampled DP-SGD is analysed under add/remove-one only; the policy's "
                             f"relation is {self.relation.value}")
        q = positive(sampling_rate, "sampling_rate")
        if q > 1:
            raise ValueError(f"sampling_rate must be in (0, 1], got {q!r}")
        sigma = positive(noise_multiplier, "noise_multiplier")
        clip = positive(max_grad_norm, "max_grad_norm")
        if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
            raise ValueError(f"steps must be an int in 1..{MAX_STEPS}, got {steps!r}")
        layout = _layout(self)
        if conditioning is not None:
            expected = RealConditioning.for_layout(layout, conditioning.slot_weight)
            if (expected.feature_index, expected.column_of_slot) != (conditioning.feature_index,
                                                                     conditioning.column_of_slot):
                raise ValueError("conditioning does not match the table's layout (its slots must be the layout's "
                                 "categorical slots, in order)")
            conditioning = expected  # the table's own, from the layout and the public weights
        event = PoissonSubsampledGaussianEvent(q, sigma, steps, relation=self.relation)
        device = torch.device(device)
        spec = Measurement(kind="dpsgd_plan", query={"sampling_rate": q, "noise_multiplier": sigma, "steps": steps,
                                                     "max_grad_norm": clip,
                                                     "discriminator": discriminator.to_dict()},
                           events=(event,), sensitivity=clip, norm="l2")
        receipt = self._charge(spec, purpose=purpose, generator=generator, run_id=run_id, parameters=parameters)
        # From here the privacy is spent: the session opens (consuming the charge) or nothing leaves.
        self._open_session(receipt, {"measurement": "dpsgd", "steps": steps})
        return DPSGDSession(self, receipt, layout, discriminator, conditioning, event, clip, device)


class DPSGDSession:
    """The private step of DP-SGD, inside the table (see the module docstring).

    Public: `layout`, `event`, `steps`, `steps_done`, `input_dim`, `uniform_width`,
    `parameter_names`.  `step(parameters)` returns the noisy clipped gradient sums,
    one tensor per parameter in `parameter_names` order."""

    def __init__(self, table: Any, receipt: Any, layout: Any, spec: Any, conditioning: Any,
                 event: PoissonSubsampledGaussianEvent, max_grad_norm: float, device: Any) -> None:
        import warnings

        import torch
        from opacus import GradSampleModule

        # Opacus' full backward hooks warn when the input needs no gradient (ours never does).
        warnings.filterwarnings("ignore", message="Full backward hook is firing", category=UserWarning)
        self._table = table
        self.receipt = receipt
        self.layout = layout
        self.event = event
        self.steps = event.steps
        self.steps_done = 0
        self.max_grad_norm = max_grad_norm
        self.device = device
        self._conditioning = conditioning
        self._closed = False
        self._failed = False
        self._digest = RunningDigest()
        self.input_dim = layout.dim + (conditioning.dim if conditioning is not None else 0)
        module = spec.build(self.input_dim).to(device)
        module.train()
        self.uniform_width = 1 + module.uniform_width
        self.parameter_names = tuple(name for name, _ in module.named_parameters())
        self._shapes = tuple(tuple(p.shape) for _, p in module.named_parameters())
        self.__gsm = GradSampleModule(module, loss_reduction="sum")
        self.__module = module
        seeded = table.noise_source == "seeded-test"
        source = table._source
        # The rows, as features, stay inside the session (which cannot be pickled or copied).
        with table._open_rows(receipt) as rows:
            frame = rows.frame
            self.__features = torch.as_tensor(layout.transform(frame)).to(device)
            self.__keys = record_keys(frame, source.words(4).tobytes()) if seeded else None
        self._threshold = _poisson_threshold(event.sampling_rate)
        self._stream = int(source.words(1)[0] >> np.uint64(1))
        self._uniforms = torch.Generator(device=device)
        self._uniforms.manual_seed(self._stream)

    def __repr__(self) -> str:
        return f"DPSGDSession(step {self.steps_done}/{self.steps}, <private>)"

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError("a DP-SGD session holds private rows; it cannot be pickled or copied")

    # -- one step ---------------------------------------------------------------------------
    def _load(self, parameters: Any) -> None:
        import torch

        if isinstance(parameters, torch.nn.Module):
            parameters = dict(parameters.named_parameters())
        if not isinstance(parameters, Mapping):
            raise TypeError("parameters must be a mapping name -> tensor (or the discriminator module)")
        if set(parameters) != set(self.parameter_names):
            raise ValueError(f"parameters must be exactly {list(self.parameter_names)}")
        with torch.no_grad():
            for (name, p), shape in zip(self.__module.named_parameters(), self._shapes):
                # Finite *after* the cast to the network's dtype: 1e300 is a finite float64 and
                # an infinite float32.
                src = torch.as_tensor(parameters[name]).to(p.device, p.dtype)
                if tuple(src.shape) != shape or not torch.all(torch.isfinite(src)):
                    raise ValueError(f"parameter {name!r} must be a finite tensor of shape {shape}")
                p.copy_(src)

    def _sample(self, step: int) -> tuple[np.ndarray, Any]:
        """(indices of this step's Poisson sample, their uniforms) — drawn inside the table."""
        import torch

        n = self.__features.shape[0]
        source = self._table._source
        if self.__keys is not None:  # seeded tests: a fixed function of (record, step)
            words = keyed_uniform_words(self.__keys, self._stream, step, 1 + self.uniform_width)
            keep = np.ones(n, bool) if self._threshold is None else words[:, 0] < np.uint64(self._threshold)
            idx = np.flatnonzero(keep)
            u = (words[idx, 1:] >> np.uint64(40)).astype(np.float32) / np.float32(2**24)
            return idx, torch.as_tensor(u).to(self.device)
        if self._threshold is None:
            idx = np.arange(n)
        else:
            idx = np.flatnonzero(source.words(n) < np.uint64(self._threshold))
        u = torch.rand(len(idx), self.uniform_width, generator=self._uniforms, device=self.device)
        return idx, u

    def _clipped_sum(self, step: int) -> np.ndarray:
        """The exact answer of step t: Σ over the Poisson sample of per-record gradients clipped to C."""
        import torch
        from torch.nn import functional as F

        total = sum(math.prod(s) for s in self._shapes)
        idx, u = self._sample(step)
        if len(idx) == 0:
            return np.zeros(total, dtype=np.float64)
        rows = self.__features[torch.as_tensor(idx, device=self.device)]
        if self._conditioning is not None:
            cond, weight = self._conditioning.condition(rows, u[:, 0])
            x = torch.cat([rows, cond], dim=1)
        else:
            x, weight = rows, rows.new_ones(rows.shape[0])
        gsm = self.__gsm
        gsm.zero_grad(set_to_none=True)
        for p in gsm.parameters():
            p.grad_sample = None
        gsm.enable_hooks()
        logits = gsm(x, u[:, 1:])
        (weight * F.softplus(-logits)).sum().backward()
        gsm.disable_hooks()
        samples = [p.grad_sample.reshape(len(idx), -1) for p in gsm.parameters()]
        # Opacus' flat clipping: one norm over all parameters per record, scaled to at most C.
        norms = torch.stack([g.norm(2, dim=1) for g in samples], dim=1).norm(2, dim=1)
        # A record whose gradient is not finite (or whose norm overflows) contributes zero: a
        # per-record term of norm 0 <= C, so the sum keeps its sensitivity.  Raising instead
        # would answer "does the sample hold a record that overflows these parameters?"
        # exactly, and the caller chooses the parameters (a data-dependent error is a release).
        # A non-finite coordinate makes its parameter's norm, hence the record's norm, non-finite
        # (inf or nan), so the norms alone tell which records to zero; the (large) per-record
        # gradients are only touched, in place, when one is not finite.
        finite = torch.isfinite(norms)
        factor = torch.where(finite, torch.clamp(self.max_grad_norm / (norms + 1e-6), max=1.0),
                             torch.zeros_like(norms))
        if not bool(finite.all()):
            for g in samples:
                g[~finite] = 0.0  # 0 · inf would be nan in the sum below
        check_clipped_norms(torch.where(finite, norms * factor, torch.zeros_like(norms)).detach().cpu().numpy(),
                            self.max_grad_norm)
        sums = [torch.einsum("i,ij->j", factor, g) for g in samples]
        gsm.zero_grad(set_to_none=True)
        for p in gsm.parameters():
            p.grad_sample = None
        return torch.cat(sums).detach().double().cpu().numpy()

    def step(self, parameters: Any) -> list[Any]:
        """The noisy clipped gradient sum of one DP-SGD step at these parameters."""
        import torch

        if self._closed:
            raise AccessError("this DP-SGD session is closed")
        if self._failed:
            raise AccessError("a step of this DP-SGD session failed after reading the rows: the session is over "
                              "(close it)")
        if self.steps_done >= self.steps:
            raise AccessError(f"the plan paid for {self.steps} steps; all of them ran")
        self._load(parameters)
        t = self.steps_done
        table, source = self._table, self._table._source
        total = sum(math.prod(s) for s in self._shapes)
        std = self.event.noise_multiplier * self.max_grad_norm
        spec = Measurement(kind="dpsgd_step", query={"step": t, "of": self.steps},
                           events=(self.event,), sensitivity=self.max_grad_norm, norm="l2", tolerance=1e-4)

        def draw() -> np.ndarray:
            from dpsynth.noise.gaussian import sample_gaussian

            return sample_gaussian(std, total, source)

        def release(answer: np.ndarray, noise: np.ndarray) -> list[Any]:
            noisy = (np.asarray(answer, dtype=np.float64) + noise).astype(np.float32)
            out, offset = [], 0
            for shape in self._shapes:
                size = math.prod(shape)
                out.append(torch.as_tensor(noisy[offset:offset + size].reshape(shape)).to(self.device))
                offset += size
            return out

        try:
            output = table._step(spec, self.receipt, self._digest, noise=draw,
                                 exact=lambda _rows: self._clipped_sum(t), release=release)
        except BaseException:
            # Whether a step on the rows fails can depend on the rows; a failed step may not be
            # retried (each retry would be one more un-noised bit): the session is over.
            self._failed = True
            raise
        self.steps_done += 1
        return [o.clone() for o in output]

    def close(self) -> Any:
        """Write the release entry committing to every step's output; returns its receipt."""
        if self._closed:
            raise AccessError("this DP-SGD session is already closed")
        self._closed = True
        return self._table._commit_release(self.receipt, self._digest.hexdigest(),
                                           {"measurement": "dpsgd", "steps_released": self.steps_done})

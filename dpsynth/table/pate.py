"""PATE inside the private table: teachers on keyed partitions, only noisy votes leave.

`pate_session(teachers=k, teacher=TeacherSpec, noise_multiplier=σ, queries=Q)`
charges ONE `GNMaxEvent(σ, Q)` for every label query the run will ever ask
(the number is fixed before any teacher trains), writes an `open` entry, and
returns a `PateSession`:

* Partition.  Record r goes to teacher key(r) mod k, key(r) the record's
  identity under a fresh secret key (`identity.record_keys`), and each
  partition is kept sorted by key.  Adding or removing one record changes the
  training set of exactly one teacher and leaves every other teacher's data and
  its order untouched; replacing one changes at most two teachers.  The
  partition is fixed once per session; teachers keep training on it.
* Teachers are the vetted `dpsynth.nn.teacher.Teacher` MLPs the table builds;
  `train(generated, steps)` trains every teacher on its partition (real) against
  the caller's generated rows (fake, public).  Each teacher's randomness is its
  own stream (its initial weights too, never torch's global random state), so
  one teacher's data never moves another teacher's training.  Nothing leaves a
  `train` call.
* Votes.  `votes(queries)` answers each query (a generated row) with the
  teachers' vote histogram plus discrete Gaussian noise: scale σ under
  add/remove (one teacher moves one vote: Δ₂ = √2, ρ = 1/σ² per query,
  Papernot et al. 2018, Prop. 8), 2σ under replace-one (two teachers may each
  move one vote, the same way: the histogram moves by (−2, +2), Δ₂ = 2√2, the
  same ρ).  The sensitivity holds per query: each query's histogram is one
  component of the answer.  At most Q queries are answered, in total; `close()`
  writes the `release` entry committing to every answer.
* Label votes (a session opened with `label_column`).  Label teacher i, a linear
  classifier of that column from the others (`dpsynth.nn.label_teacher`), is
  trained deterministically on partition i alone; `label_votes(queries)` answers
  each query with the histogram of their predicted categories plus the same
  noise, one vote per teacher, so the same Δ₂ per query; label queries count
  against the same Q.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np

from accountant.events import GNMaxEvent, NeighbouringRelation

from .commitments import RunningDigest
from .dpsgd import AccessError, _layout
from .identity import record_keys
from .measurement import Measurement
from .params import positive
from .sensitivity import check_votes

__all__ = ["PateMixin", "PateSession", "MAX_TEACHERS", "MAX_QUERIES"]

MAX_TEACHERS = 10_000
MAX_QUERIES = 100_000_000
_MAX_ROWS_PER_CALL = 1_000_000


def _vote_sensitivity(replace: bool) -> float:
    """Δ₂ of one query's vote histogram: one teacher moves one vote (√2) under add/remove; under
    replace-one two teachers may each move one, the same way ((−2, +2): 2√2)."""
    return 2.0 * math.sqrt(2.0) if replace else math.sqrt(2.0)


class PateMixin:
    """`PrivateTable`'s PATE path."""

    def pate_session(self, *, teachers: int, teacher: Any = None, noise_multiplier: float, queries: int,
                     purpose: str, generator: str | None = None, run_id: str | None = None,
                     parameters: dict | None = None, device: Any = "cpu", label_column: str | None = None,
                     label_teacher: Any = None) -> "PateSession":
        """Charge every label query of the run and open a PATE session (module docstring).

        `label_column` (a categorical column of the schema) adds label teachers: teacher i's
        linear classifier of that column from the others, on partition i (`label_votes`)."""
        import torch

        from dpsynth.nn.label_teacher import LabelTeacherSpec
        from dpsynth.nn.teacher import TeacherSpec

        teacher = TeacherSpec() if teacher is None else teacher
        # Exact type, and the table's own copy from the public numbers: a subclass (or an
        # instance whose `build` was replaced) would be caller code trained on the partitions —
        # attack 1 of proofs/threat_model.md through the vetted spec.
        if type(teacher) is not TeacherSpec:
            raise TypeError("teacher must be a dpsynth.nn.TeacherSpec (the table builds the teachers), not a "
                            f"{type(teacher).__module__}.{type(teacher).__name__}")
        teacher = TeacherSpec(tuple(int(h) for h in teacher.hidden), float(teacher.learning_rate),
                              int(teacher.batch_size), float(teacher.weight_decay))
        if isinstance(teachers, bool) or not isinstance(teachers, int) or not 2 <= teachers <= MAX_TEACHERS:
            raise ValueError(f"teachers must be an int in 2..{MAX_TEACHERS}, got {teachers!r}")
        if isinstance(queries, bool) or not isinstance(queries, int) or not 1 <= queries <= MAX_QUERIES:
            raise ValueError(f"queries must be an int in 1..{MAX_QUERIES}, got {queries!r}")
        sigma = positive(noise_multiplier, "noise_multiplier")
        layout = _layout(self)
        label_block = None
        if label_column is not None:
            label_block = _label_block(layout, label_column)
            label_teacher = LabelTeacherSpec() if label_teacher is None else label_teacher
            if type(label_teacher) is not LabelTeacherSpec:  # the table builds its teachers (as above)
                raise TypeError("label_teacher must be a dpsynth.nn.LabelTeacherSpec, not a "
                                f"{type(label_teacher).__module__}.{type(label_teacher).__name__}")
            label_teacher = LabelTeacherSpec.from_dict(label_teacher.to_dict())
        elif label_teacher is not None:
            raise ValueError("label_teacher needs a label_column")
        event = GNMaxEvent(sigma, queries, relation=self.relation)
        replace = self.relation is NeighbouringRelation.REPLACE_ONE
        query = {"teachers": teachers, "queries": queries, "noise_multiplier": sigma, "teacher": teacher.to_dict()}
        if label_block is not None:
            query["label"] = {"column": label_column, "teacher": label_teacher.to_dict()}
        spec = Measurement(kind="pate_plan", query=query,
                           events=(event,), sensitivity=_vote_sensitivity(replace), norm="l2")
        receipt = self._charge(spec, purpose=purpose, generator=generator, run_id=run_id, parameters=parameters)
        self._open_session(receipt, {"measurement": "pate", "queries": queries, "teachers": teachers})
        return PateSession(self, receipt, layout, teacher, teachers, event, torch.device(device),
                           label=None if label_block is None else (label_column, label_block, label_teacher))


def _label_block(layout: Any, column: Any) -> tuple[int, int]:
    """(start, end) of `column`'s one-hot block in the layout: a categorical column (public)."""
    from dpsynth.nn.layout import CategoricalBlock

    for b in layout.blocks:
        if b.facts.name == column:
            if not isinstance(b, CategoricalBlock):
                raise ValueError(f"label_column {column!r} is numeric; label teachers predict a categorical column")
            if b.width < 2:
                raise ValueError(f"label_column {column!r} has one category: nothing to predict")
            return b.start, b.end
    raise KeyError(f"label_column {column!r} is not a column of the table's schema")


class PateSession:
    """Teachers trained and voting inside the table (see the module docstring).

    Public: `layout`, `event`, `n_teachers`, `queries`, `queries_done`, `label_column`, `label_block`."""

    def __init__(self, table: Any, receipt: Any, layout: Any, spec: Any, n_teachers: int, event: GNMaxEvent,
                 device: Any, label: tuple[str, tuple[int, int], Any] | None = None) -> None:
        import torch

        self._table = table
        self.receipt = receipt
        self.layout = layout
        self.event = event
        self.n_teachers = n_teachers
        self.queries = event.queries
        self.queries_done = 0
        self.device = device
        self._spec = spec
        self._closed = False
        self._failed = False
        self._digest = RunningDigest()
        replace = table.relation is NeighbouringRelation.REPLACE_ONE
        # GNMax's ρ = 1/σ² per query assumes Δ₂ = √2; with Δ₂ = 2√2 the same ρ needs 2σ.
        self._sensitivity = _vote_sensitivity(replace)
        self._scale = event.noise_multiplier * self._sensitivity / math.sqrt(2.0)
        source = table._source
        with table._open_rows(receipt) as rows:
            frame = rows.frame
            keys = record_keys(frame, source.words(4).tobytes())
            features = layout.transform(frame)
        teacher_of = (keys % np.uint64(n_teachers)).astype(np.int64)
        members = [np.flatnonzero(teacher_of == i) for i in range(n_teachers)]
        # Canonical order inside each partition: by record key (a function of the record alone).
        members = [m[np.argsort(keys[m], kind="stable")] for m in members]
        sizes = np.array([len(m) for m in members], dtype=np.int64)
        longest = max(1, int(sizes.max(initial=0)))
        parts = np.zeros((n_teachers, longest, layout.dim), dtype=np.float32)
        for i, m in enumerate(members):
            parts[i, :len(m)] = features[m]
        self.__parts = torch.as_tensor(parts).to(device)
        self.__sizes = torch.as_tensor(sizes).to(device)
        # The teachers' randomness: one stream from the table's source, consumed in a fixed
        # pattern (the same draws whatever the partitions hold), so teacher i's initial weights
        # and batches never depend on another teacher's data.
        self.__stream = torch.Generator(device="cpu")
        self.__stream.manual_seed(int(source.words(1)[0] >> np.uint64(1)))
        self.__teachers = spec.ensemble(n_teachers, layout.dim, self.__stream).to(device)
        self.__optimizer = torch.optim.Adam(self.__teachers.parameters(), lr=spec.learning_rate,
                                            weight_decay=spec.weight_decay)
        # Label teachers (optional): trained on first use, deterministically (label_teacher.py).
        self.label_column = None if label is None else label[0]
        self.label_block = None if label is None else label[1]
        self._label_spec = None if label is None else label[2]
        self.__labellers = None

    def __repr__(self) -> str:
        return f"PateSession(teachers={self.n_teachers}, queries {self.queries_done}/{self.queries}, <private>)"

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError("a PATE session holds private rows and teachers; it cannot be pickled or copied")

    def _check_open(self) -> None:
        if self._closed:
            raise AccessError("this PATE session is closed")
        if self._failed:
            raise AccessError("a step of this PATE session failed after reading the rows: the session is over "
                              "(close it)")

    @contextmanager
    def _ends_on_failure(self) -> Iterator[None]:
        """Whether work on the rows fails can depend on the rows; a failure is never retried
        (each retry would be one more un-noised bit): the session is over."""
        try:
            yield
        except BaseException:
            self._failed = True
            raise

    def _public_rows(self, x: Any, name: str) -> Any:
        import torch

        t = torch.as_tensor(np.asarray(x, dtype=np.float32) if not isinstance(x, torch.Tensor) else x)
        if t.ndim != 2 or t.shape[1] != self.layout.dim or not 1 <= t.shape[0] <= _MAX_ROWS_PER_CALL:
            raise ValueError(f"{name} must be a (m, {self.layout.dim}) array of generated rows in the table's "
                             f"layout, 1 <= m <= {_MAX_ROWS_PER_CALL}")
        if not torch.all(torch.isfinite(t)):
            raise ValueError(f"{name} must be finite")
        return t.to(self.device, torch.float32)

    def train(self, generated: Any, steps: int = 1) -> None:
        """Each teacher takes `steps` Adam steps: its partition (real) against `generated` (fake)."""
        import torch
        from torch.nn import functional as F

        self._check_open()
        if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= 10_000:
            raise ValueError(f"steps must be an int in 1..10000, got {steps!r}")
        fake = self._public_rows(generated, "generated")
        b = self._spec.batch_size
        k = self.n_teachers
        parts, sizes, model, opt = self.__parts, self.__sizes, self.__teachers, self.__optimizer
        has_rows = (sizes > 0).to(torch.float32)
        with self._table._open_rows(self.receipt), self._ends_on_failure():
            model.train()
            for _ in range(steps):
                # Uniforms first (data-independent), then scaled by each partition's size.
                u_real = torch.rand(k, b, generator=self.__stream).to(self.device)
                u_fake = torch.rand(k, b, generator=self.__stream).to(self.device)
                real_idx = torch.clamp((u_real * sizes.unsqueeze(1)).long(), min=0)
                real_idx = torch.minimum(real_idx, torch.clamp(sizes - 1, min=0).unsqueeze(1))
                fake_idx = torch.clamp((u_fake * fake.shape[0]).long(), max=fake.shape[0] - 1)
                real = torch.gather(parts, 1, real_idx.unsqueeze(-1).expand(k, b, parts.shape[2]))
                logits_real = model(real)
                logits_fake = model(fake[fake_idx])
                per_teacher = F.softplus(logits_fake).mean(dim=1) + has_rows * F.softplus(-logits_real).mean(dim=1)
                opt.zero_grad(set_to_none=True)
                per_teacher.sum().backward()
                opt.step()

    def _noisy_histograms(self, queries: Any, kind: str, width: int, histograms: Any,
                          query: dict | None = None) -> np.ndarray:
        """The common path of `votes` and `label_votes`: public query rows in, at most the plan's
        remaining queries, exact (m, width) histograms (one vote per teacher, checked) plus
        discrete Gaussian noise of the session's scale, released as one session step."""
        self._check_open()
        x = self._public_rows(queries, "queries")
        m = int(x.shape[0])
        if self.queries_done + m > self.queries:
            raise AccessError(f"the plan paid for {self.queries} label queries; {self.queries - self.queries_done} "
                              f"remain, {m} were asked")
        table = self._table
        source = table._source
        scale = self._scale
        spec = Measurement(kind=kind, query={"first": self.queries_done, "queries": m, **(query or {})},
                           events=(self.event,), sensitivity=self._sensitivity, norm="l2")

        def draw() -> np.ndarray:
            from dpsynth.noise.discrete_gaussian import sample_discrete_gaussian

            return np.asarray(sample_discrete_gaussian(scale, m * width, source), dtype=np.int64).reshape(m, width)

        def exact(_rows: Any) -> list[np.ndarray]:
            votes = histograms(x)
            check_votes(votes, self.n_teachers)
            return list(votes)  # one component per query: the sensitivity bound is per query

        with self._ends_on_failure():
            out = table._step(spec, self.receipt, self._digest, noise=draw, exact=exact,
                              release=lambda v, z: np.stack(v).reshape(m, width) + z)
        self.queries_done += m
        return np.array(out, copy=True)

    def votes(self, queries: Any) -> np.ndarray:
        """Noisy vote histograms, shape (m, 2): column 1 counts teachers voting "real"."""
        import torch

        def histograms(x: Any) -> np.ndarray:
            model = self.__teachers
            model.eval()
            with torch.no_grad():
                real = (model(x.unsqueeze(0).expand(self.n_teachers, x.shape[0], x.shape[1])) > 0).sum(dim=0)
            real = real.cpu().numpy().astype(np.int64)
            return np.stack([self.n_teachers - real, real], axis=1)

        return self._noisy_histograms(queries, "pate_votes", 2, histograms)

    def _without_label(self, x: Any) -> Any:
        """The features a label teacher reads: the label column's block zeroed."""
        a, b = self.label_block
        x = x.clone()
        x[..., a:b] = 0.0
        return x

    def _label_teachers(self) -> Any:
        """Train the label teachers once (on first use): teacher i on partition i alone."""
        import torch

        if self.__labellers is None:
            from dpsynth.nn.label_teacher import LabelTeacherEnsemble

            a, b = self.label_block
            parts, sizes = self.__parts, self.__sizes
            mask = (torch.arange(parts.shape[1], device=self.device).unsqueeze(0) < sizes.unsqueeze(1))
            y = parts[..., a:b].argmax(dim=-1)
            model = LabelTeacherEnsemble(self.n_teachers, self.layout.dim, b - a).to(self.device)
            model.fit(self._without_label(parts), y, mask.to(torch.float32), self._label_spec)
            self.__labellers = model
        return self.__labellers

    def label_votes(self, queries: Any) -> np.ndarray:
        """Noisy label-vote histograms, shape (m, c): column j counts the label teachers that give
        the query (a generated row; its label block is ignored) the label column's j-th slot.
        Each query is one of the plan's Q, charged at open, as `votes` are."""
        import torch

        self._check_open()
        if self.label_block is None:
            raise AccessError("this PATE session was opened without a label_column")
        c = self.label_block[1] - self.label_block[0]

        def histograms(x: Any) -> np.ndarray:
            model = self._label_teachers()
            with torch.no_grad():
                inputs = self._without_label(x).unsqueeze(0).expand(self.n_teachers, x.shape[0], x.shape[1])
                choice = model(inputs).argmax(dim=-1)                       # (k, m)
            return torch.nn.functional.one_hot(choice, c).sum(dim=0).cpu().numpy().astype(np.int64)

        return self._noisy_histograms(queries, "pate_label_votes", c, histograms, {"column": self.label_column})

    def close(self) -> Any:
        """Write the release entry committing to every answer; returns its receipt."""
        if self._closed:
            raise AccessError("this PATE session is already closed")
        self._closed = True
        return self._table._commit_release(self.receipt, self._digest.hexdigest(),
                                           {"measurement": "pate", "queries_released": self.queries_done})

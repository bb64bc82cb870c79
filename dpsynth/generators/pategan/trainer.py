"""PATE-GAN's training loop: teachers and votes inside the table, everything else post-processing.

One iteration (of exactly `plan.iterations`, fixed before any teacher trained):

1. the generator's rows (public: the generator has seen only released votes) go
   to the table, where every teacher takes a few steps telling its own partition
   (real) from them (fake) — `PateSession.train`; nothing comes back;
2. m fresh generator rows are the iteration's label queries: the table answers
   each with the teachers' vote histogram plus noise (`PateSession.votes`); the
   soft label is the noisy share of "real" votes, clipped to [0, 1];
3. the student trains on every labelled query so far (released labels are free
   to reuse: post-processing), never on a real row;
4. the generator trains against the student (and CTGAN's condition loss, from
   the noisy category counts).

With a label column, the plan's last `label_queries` queries go to the label
teachers after the last iteration (`fit_labeller`).

No step depends on the data except through the released votes: no early
stopping, no selection on private data, the number of queries is the plan's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch.nn import functional as F

from ..dpctgan.conditional import ConditionalSampler
from ..dpctgan.networks import Generator, activate
from .labeller import Labeller, vote_shares
from .plan import PatePlan
from .student import Student

__all__ = ["PateNetworks", "PateLog", "train", "fit_labeller"]


@dataclass
class PateNetworks:
    generator: Generator
    student: Student
    embedding_dim: int


@dataclass
class PateLog:
    iterations_done: int = 0
    queries_done: int = 0
    losses: list[tuple[float, float]] = field(default_factory=list)   # (student, generator) per iteration
    mean_label: list[float] = field(default_factory=list)             # mean soft label per iteration (public)


def one_hot_blocks(transformer: Any) -> list[tuple[int, int]]:
    """(start, end) of every one-hot block of the layout (categories, and numeric columns'
    [present, missing] pairs)."""
    from dpsynth.nn.layout import CategoricalBlock

    spans = []
    for b in transformer.blocks:
        if isinstance(b, CategoricalBlock):
            spans.append((b.start, b.end))
        elif b.missing_start is not None:
            spans.append((b.missing_start, b.missing_start + 2))
    return spans


def harden(x: torch.Tensor, spans: list[tuple[int, int]]) -> torch.Tensor:
    """Each one-hot block made exactly one-hot (its argmax), with the soft values' gradient
    (straight-through).  Real rows are exactly one-hot; a judge shown soft Gumbel outputs would
    tell generated rows by their softness alone and teach the generator nothing."""
    out = x
    for a, b in spans:
        soft = x[:, a:b]
        hard = F.one_hot(soft.argmax(dim=1), b - a).to(soft.dtype)
        out = torch.cat([out[:, :a], hard + soft - soft.detach(), out[:, b:]], dim=1)
    return out


def _generate(nets: PateNetworks, sampler: ConditionalSampler, transformer: Any, n: int, post: torch.Generator,
              device: torch.device, spans: list[tuple[int, int]]):
    z = torch.randn(n, nets.embedding_dim, generator=post, device=device)
    cond, column, _ = sampler.sample_training(n, post, device)
    raw = nets.generator(torch.cat([z, cond], dim=1))
    return raw, harden(activate(raw, transformer, post), spans), cond, column


def train(nets: PateNetworks, sampler: ConditionalSampler, transformer: Any, plan: PatePlan, session: Any, *,
          post: torch.Generator, device: torch.device, batch_size: int, teacher_steps: int, student_steps: int,
          generator_steps: int, student_lr: float, generator_lr: float, progress: bool = True) -> PateLog:
    """Run exactly `plan.iterations` iterations, asking exactly `plan.queries - plan.label_queries`
    discriminator queries."""
    if session.queries != plan.queries or session.n_teachers != plan.teachers \
            or session.event.noise_multiplier != plan.noise_multiplier:
        raise RuntimeError("the PATE session was not opened for this plan")
    s_opt = torch.optim.Adam(nets.student.parameters(), lr=student_lr, betas=(0.5, 0.9))
    g_opt = torch.optim.Adam(nets.generator.parameters(), lr=generator_lr, betas=(0.5, 0.9))
    xs: list[torch.Tensor] = []
    ys: list[torch.Tensor] = []
    log = PateLog()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=plan.iterations, desc="PATE-GAN", unit="it", leave=False)
    m, k = plan.queries_per_iteration, plan.teachers
    spans = one_hot_blocks(transformer)
    for _ in range(plan.iterations):
        nets.generator.train()
        # 1. the teachers learn, inside the table, against the generator's current rows
        with torch.no_grad():
            _, fake, _, _ = _generate(nets, sampler, transformer, batch_size, post, device, spans)
        session.train(fake.cpu(), steps=teacher_steps)
        # 2. the iteration's label queries, answered by the noisy vote
        with torch.no_grad():
            _, queries, _, _ = _generate(nets, sampler, transformer, m, post, device, spans)
        votes = session.votes(queries.cpu())
        label = torch.clamp(torch.as_tensor(votes[:, 1], dtype=torch.float32) / k, 0.0, 1.0).to(device)
        xs.append(queries.detach())
        ys.append(label)
        log.queries_done += m
        log.mean_label.append(float(label.mean()))
        x_all, y_all = torch.cat(xs), torch.cat(ys)
        # 3. the student, on every released label so far
        s_loss = torch.zeros(())
        for _ in range(student_steps):
            idx = torch.randint(0, x_all.shape[0], (min(batch_size, x_all.shape[0]),), generator=post,
                                device=device)
            s_loss = F.binary_cross_entropy_with_logits(nets.student(x_all[idx]), y_all[idx])
            s_opt.zero_grad(set_to_none=True)
            s_loss.backward()
            s_opt.step()
        # 4. the generator, against the student only
        g_loss = torch.zeros(())
        for _ in range(generator_steps):
            raw, fake, cond, column = _generate(nets, sampler, transformer, batch_size, post, device, spans)
            g_loss = F.softplus(-nets.student(fake)).mean() + sampler.condition_loss(raw, cond, column)
            g_opt.zero_grad(set_to_none=True)
            g_loss.backward()
            g_opt.step()
        log.iterations_done += 1
        log.losses.append((float(s_loss.detach()), float(g_loss.detach())))
        if bar is not None:
            bar.set_postfix(student=f"{log.losses[-1][0]:.3f}", generator=f"{log.losses[-1][1]:.3f}",
                            label=f"{log.mean_label[-1]:.2f}", eps=f"{plan.epsilon_after(log.queries_done):.3f}")
            bar.update(1)
    if bar is not None:
        bar.close()
    return log


def fit_labeller(nets: PateNetworks, sampler: ConditionalSampler, transformer: Any, plan: PatePlan, session: Any, *,
                 post: torch.Generator, device: torch.device, block: tuple[int, int]) -> Labeller:
    """The plan's last `plan.label_queries` queries: rows of the trained generator (drawn as
    `sample` draws them), answered by the label teachers' noisy votes; the labeller is fitted
    to the released vote shares (post-processing)."""
    q = plan.label_queries
    spans = one_hot_blocks(transformer)
    nets.generator.eval()
    with torch.no_grad():
        z = torch.randn(q, nets.embedding_dim, generator=post, device=device)
        cond = sampler.sample_original(q, post, device)
        rows = harden(activate(nets.generator(torch.cat([z, cond], dim=1)), transformer, post), spans).cpu()
    soft = torch.as_tensor(vote_shares(session.label_votes(rows)), dtype=torch.float32)
    labeller = Labeller(transformer.dim, block)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=post, device=device)))
        labeller.fit(rows, soft)
    # The target's overall rate from its released noisy counts (when the plan measured them).
    for block, p in zip(sampler.blocks, sampler.p_freq):
        if (block.start, block.end) == tuple(labeller.block):
            labeller.calibrate(rows, p)
    return labeller

"""The training loop: the private step inside the table, post-processing for the rest.

One discriminator step t (of exactly T, fixed by the plan):

1. the private table's DP-SGD session takes the discriminator's current
   parameters and returns the noisy clipped gradient sum of the real-row loss on
   its t-th Poisson sample (`PrivateTable.dpsgd_session`): the only place real
   data enters, and the Poisson-subsampled Gaussian mechanism of the charged
   event;
2. that noisy sum is divided by the public batch size, and the gradient of the
   fake-row loss is added: fake rows come from the generator and public
   randomness, so this term is a function of already-released parameters;
3. the optimiser updates the discriminator.

Then the generator takes a step against the discriminator (post-processing).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.nn import functional as F

from .conditional import ConditionalSampler
from .networks import Discriminator, Generator, activate
from .plan import TrainingPlan
from dpsynth.nn.layout import TableTransformer

__all__ = ["Networks", "train", "TrainingLog"]


@dataclass
class Networks:
    generator: Generator
    discriminator: Discriminator
    embedding_dim: int


@dataclass
class TrainingLog:
    steps_done: int = 0
    epoch_losses: list[tuple[float, float]] = field(default_factory=list)


def _fake_batch(nets: Networks, sampler: ConditionalSampler, transformer: TableTransformer, batch: int,
                post: torch.Generator, device: torch.device):
    z = torch.randn(batch, nets.embedding_dim, generator=post, device=device)
    cond, column, _ = sampler.sample_training(batch, post, device)
    raw = nets.generator(torch.cat([z, cond], dim=1))
    fake = activate(raw, transformer, post)
    uniforms = torch.rand(batch, nets.discriminator.uniform_width, generator=post, device=device)
    return raw, fake, cond, column, uniforms


def train(nets: Networks, sampler: ConditionalSampler, transformer: TableTransformer, plan: TrainingPlan,
          session: Any, *, post: torch.Generator, device: torch.device, generator_lr: float,
          discriminator_lr: float, weight_decay: float, progress: bool = True) -> TrainingLog:
    """Run exactly `plan.steps` discriminator steps (each followed by one generator step)."""
    if session.steps != plan.steps or session.event.noise_multiplier != plan.noise_multiplier \
            or session.event.sampling_rate != plan.sampling_rate:
        raise RuntimeError("the DP-SGD session was not opened for this plan")
    d = nets.discriminator
    d_params = [p for p in d.parameters() if p.requires_grad]
    if [n for n, _ in d.named_parameters()] != list(session.parameter_names):
        raise RuntimeError("the discriminator does not match the session's network")
    g_params = [p for p in nets.generator.parameters() if p.requires_grad]
    d_opt = torch.optim.Adam(d_params, lr=discriminator_lr, betas=(0.5, 0.9), weight_decay=weight_decay)
    g_opt = torch.optim.Adam(g_params, lr=generator_lr, betas=(0.5, 0.9), weight_decay=weight_decay)
    d.train()
    nets.generator.train()
    log = TrainingLog()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=plan.steps, desc="DP-CTGAN", unit="step", leave=False)
    d_sum = g_sum = 0.0
    for step in range(plan.steps):
        # -- 1. the private part, inside the table: the noisy clipped sum of real-row gradients --
        noisy = session.step(d)
        # -- 2. public normaliser, then the fake-row term (post-processing) --
        with torch.no_grad():
            _, fake, cond, _, fake_uniforms = _fake_batch(nets, sampler, transformer, plan.batch_size, post, device)
        fake_loss = F.softplus(d(torch.cat([fake, cond], dim=1), fake_uniforms)).mean()
        fake_grads = torch.autograd.grad(fake_loss, d_params)
        with torch.no_grad():
            for p, n, g in zip(d_params, noisy, fake_grads):
                p.grad = n.to(p.device) / plan.batch_size + g
        # -- 3. the discriminator's update --
        d_opt.step()
        d_opt.zero_grad(set_to_none=True)
        d_loss = float(fake_loss.detach())
        # -- the generator's step: it sees only the discriminator (post-processing) --
        raw, fake, cond, column, fake_uniforms = _fake_batch(nets, sampler, transformer, plan.batch_size, post,
                                                             device)
        logits = d(torch.cat([fake, cond], dim=1), fake_uniforms)
        g_loss = F.softplus(-logits).mean() + sampler.condition_loss(raw, cond, column)
        g_grads = torch.autograd.grad(g_loss, g_params)
        for p, g in zip(g_params, g_grads):
            p.grad = g
        g_opt.step()
        g_opt.zero_grad(set_to_none=True)
        d_sum += d_loss
        g_sum += float(g_loss.detach())
        log.steps_done = step + 1
        if (step + 1) % plan.steps_per_epoch == 0 or step + 1 == plan.steps:
            done = (step % plan.steps_per_epoch) + 1
            log.epoch_losses.append((d_sum / done, g_sum / done))
            d_sum = g_sum = 0.0
            if bar is not None:
                epoch = math.ceil((step + 1) / plan.steps_per_epoch)
                bar.set_postfix(epoch=f"{epoch}/{plan.epochs}", loss_d_fake=f"{log.epoch_losses[-1][0]:.3f}",
                                loss_g=f"{log.epoch_losses[-1][1]:.3f}",
                                eps=f"{plan.epsilon_after(step + 1):.3f}")
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return log

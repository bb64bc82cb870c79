"""The training loop: DP-SGD on the discriminator (Opacus), post-processing for the rest.

One discriminator step t (of exactly T, fixed by the plan):

1. the batch source yields the t-th Poisson sample of real rows, each with its
   own uniforms (its conditioned column and dropout masks);
2. Opacus' `GradSampleModule` computes per-row gradients of the weighted real
   loss, `DPOptimizer.pre_step` clips each to C, sums, and adds N(0, σ²C²):
   the only place real data enters, and the Poisson-subsampled Gaussian
   mechanism of the charged event;
3. that noisy sum is divided by the public batch size, and the gradient of the
   fake-row loss is added: fake rows come from the generator and public
   randomness, so this term is a function of already-released parameters;
4. the optimiser updates the discriminator.

Then the generator takes a step against the discriminator (post-processing).
Opacus' `PrivacyEngine.make_private` is not used: it takes q from
len(data_loader) (the private n), and normalises by q·n; here q and the
normaliser are public.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import torch
from opacus import GradSampleModule
from opacus.optimizers import DPOptimizer
from torch.nn import functional as F

from .conditional import ConditionalSampler
from .networks import Discriminator, Generator, activate
from .plan import TrainingPlan
from .transformer import TableTransformer

__all__ = ["Networks", "train", "make_dp_optimizer", "StepHook", "TrainingLog"]

#: Test-only seam: called with (step, clipped sums, noisy sums); may return noisy sums to
#: use instead (record-and-replay freezes them).  Refused unless the run is seeded.
StepHook = Callable[[int, Sequence[torch.Tensor], Sequence[torch.Tensor]], Sequence[torch.Tensor] | None]


@dataclass
class Networks:
    generator: Generator
    discriminator: Discriminator
    embedding_dim: int


@dataclass
class TrainingLog:
    steps_done: int = 0
    epoch_losses: list[tuple[float, float]] = field(default_factory=list)


def make_dp_optimizer(optimizer: torch.optim.Optimizer, *, noise_multiplier: float, max_grad_norm: float,
                      noise: torch.Generator) -> DPOptimizer:
    """The discriminator's DP-SGD step: per-sample clipping to C, sum, N(0, σ²C²) per
    coordinate.  Sum reduction: the normaliser is applied afterwards from public numbers."""
    return DPOptimizer(optimizer, noise_multiplier=noise_multiplier, max_grad_norm=max_grad_norm,
                       expected_batch_size=None, loss_reduction="sum", generator=noise)


def _fake_batch(nets: Networks, sampler: ConditionalSampler, transformer: TableTransformer, batch: int,
                post: torch.Generator, device: torch.device):
    z = torch.randn(batch, nets.embedding_dim, generator=post, device=device)
    cond, column, _ = sampler.sample_training(batch, post, device)
    raw = nets.generator(torch.cat([z, cond], dim=1))
    fake = activate(raw, transformer, post)
    uniforms = torch.rand(batch, nets.discriminator.uniform_width, generator=post, device=device)
    return raw, fake, cond, column, uniforms


def train(nets: Networks, sampler: ConditionalSampler, transformer: TableTransformer, plan: TrainingPlan,
          batches: Iterator[tuple[torch.Tensor, torch.Tensor]], *, noise: torch.Generator,
          post: torch.Generator, device: torch.device, generator_lr: float, discriminator_lr: float,
          weight_decay: float, progress: bool = True, step_hook: StepHook | None = None,
          seeded: bool = False) -> TrainingLog:
    """Run exactly `plan.steps` discriminator steps (each followed by one generator step)."""
    if step_hook is not None and not seeded:
        raise RuntimeError("step hooks replace the DP-SGD noise and exist for seeded tests only")
    # Opacus' full backward hooks warn when the input needs no gradient (ours never does).
    warnings.filterwarnings("ignore", message="Full backward hook is firing", category=UserWarning)
    gsm = GradSampleModule(nets.discriminator, loss_reduction="sum")
    d_params = [p for p in gsm.parameters() if p.requires_grad]
    g_params = [p for p in nets.generator.parameters() if p.requires_grad]
    d_opt = make_dp_optimizer(
        torch.optim.Adam(d_params, lr=discriminator_lr, betas=(0.5, 0.9), weight_decay=weight_decay),
        noise_multiplier=plan.noise_multiplier, max_grad_norm=plan.max_grad_norm, noise=noise)
    g_opt = torch.optim.Adam(g_params, lr=generator_lr, betas=(0.5, 0.9), weight_decay=weight_decay)
    gsm.train()
    nets.generator.train()
    log = TrainingLog()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=plan.steps, desc="DP-CTGAN", unit="step", leave=False)
    d_sum = g_sum = 0.0
    for step in range(plan.steps):
        rows, uniforms = next(batches)
        # -- 1-2. the private part: clipped per-row gradients, summed, plus Gaussian noise --
        d_opt.zero_grad(set_to_none=True)
        gsm.enable_hooks()
        if rows.shape[0] > 0:
            cond_real, weight = sampler.real_condition(rows, uniforms[:, 0])
            logits = gsm(torch.cat([rows, cond_real], dim=1), uniforms[:, 1:])
            (weight * F.softplus(-logits)).sum().backward()
            d_opt.pre_step()
        else:  # an empty Poisson sample: the sum is zero, the noise is still added
            for p in d_params:
                p.summed_grad = torch.zeros_like(p)
            d_opt.add_noise()
        if step_hook is not None:
            frozen = step_hook(step, [p.summed_grad.detach() for p in d_params], [p.grad.detach() for p in d_params])
            if frozen is not None:
                for p, g in zip(d_params, frozen):
                    p.grad = g.detach().clone().to(p.device)
        # -- 3. public normaliser, then the fake-row term (post-processing) --
        gsm.disable_hooks()
        with torch.no_grad():
            for p in d_params:
                p.grad = p.grad / plan.batch_size
            _, fake, cond, _, fake_uniforms = _fake_batch(nets, sampler, transformer, plan.batch_size, post, device)
        fake_loss = F.softplus(gsm(torch.cat([fake, cond], dim=1), fake_uniforms)).mean()
        fake_grads = torch.autograd.grad(fake_loss, d_params)
        with torch.no_grad():
            for p, g in zip(d_params, fake_grads):
                p.grad = p.grad + g
        # -- 4. the discriminator's update --
        d_opt.original_optimizer.step()
        d_loss = float(fake_loss.detach())
        # -- the generator's step: it sees only the discriminator (post-processing) --
        raw, fake, cond, column, fake_uniforms = _fake_batch(nets, sampler, transformer, plan.batch_size, post,
                                                             device)
        logits = gsm(torch.cat([fake, cond], dim=1), fake_uniforms)
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
    d_opt.zero_grad(set_to_none=True)
    gsm.disable_hooks()
    return log

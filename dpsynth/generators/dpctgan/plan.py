"""The training plan: fixed from public numbers before any record is read.

A run of DP-CTGAN is (ε, δ)-DP on its own (ε is the run's share, δ the
policy's).  Its budget is the RDP B(α_run) that converts to exactly (ε, δ) at
one order α_run: the zCDP-optimal order for (ε, δ) — the order the gate's
per-run cap uses — or the gate's filter order α* when the run takes the
whole budget (then B(α*) is exactly what the gate admits).  It is split
explicitly in RDP at α_run between two measurements:

* the noisy category counts for conditional sampling get `frequency_share` of
  the run's RDP budget B(α*) (default 10 %), as a Gaussian mechanism (ρ-zCDP);
* DP-SGD on the discriminator gets the rest, as ONE Poisson-subsampled
  Gaussian event (q, σ, T), σ calibrated by our accountant at α*.

q = batch_size / max_records: the policy's public bound on n, never n itself
(Poisson sampling then gives an expected batch of q·n).  T = epochs ×
ceil(1/q), an "epoch" being one expected pass over max_records.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping

from accountant import PoissonSubsampledGaussianEvent, RDPAccountant, calibrate_dpsgd_noise
from accountant.conversions import epsilon_at_order, rdp_budget_at_order
from accountant.events import GaussianEvent
from accountant.filter import RenyiFilter
from accountant.orders import orders_with
from accountant.rdp import event_rdp

__all__ = ["TrainingPlan", "make_plan", "run_order", "PlanError", "frequency_noise_multiplier"]


class PlanError(ValueError):
    """The requested plan cannot run (bad parameters or too little ε for it)."""


@dataclass(frozen=True)
class TrainingPlan:
    """Everything the privacy analysis depends on, fixed before training."""

    epsilon: float               # the run's share of the budget (at the policy's δ)
    delta: float
    order: float                 # α_run, the order the plan is calibrated at
    run_budget: float            # RDP at α* this run may cost
    frequency_share: float
    frequency_noise_multiplier: float | None  # z of the Gaussian on counts (None: no categorical column)
    sampling_rate: float
    batch_size: int              # public expected batch at max_records; normalises the gradient
    max_records: int
    epochs: int
    steps_per_epoch: int
    steps: int
    noise_multiplier: float      # σ of DP-SGD (noise std = σ · C)
    max_grad_norm: float         # C

    @property
    def dpsgd_event(self) -> PoissonSubsampledGaussianEvent:
        return PoissonSubsampledGaussianEvent(self.sampling_rate, self.noise_multiplier, self.steps)

    @property
    def frequency_event(self) -> GaussianEvent | None:
        if self.frequency_noise_multiplier is None:
            return None
        return GaussianEvent(self.frequency_noise_multiplier)

    def frequency_rho(self) -> float:
        z = self.frequency_noise_multiplier
        return 0.0 if z is None else 1.0 / (2.0 * z * z)

    @property
    def events(self) -> tuple:
        return tuple(e for e in (self.frequency_event, self.dpsgd_event) if e is not None)

    def cost(self, order: float | None = None) -> float:
        """The plan's total RDP at `order` (default: the plan's own α_run); at the gate's
        α* this is what the gate's filter will be charged."""
        alpha = self.order if order is None else float(order)
        return math.fsum(float(event_rdp(e, [alpha])[0]) for e in self.events)

    def epsilon_after(self, steps_done: int) -> float:
        """Full-curve ε at δ of the counts plus the first `steps_done` DP-SGD steps
        (post-processing of public parameters: shown in the progress bar)."""
        acc = RDPAccountant(orders=orders_with(self.order))
        if self.frequency_event is not None:
            acc.compose(self.frequency_event)
        if steps_done > 0:
            acc.compose(PoissonSubsampledGaussianEvent(self.sampling_rate, self.noise_multiplier, steps_done))
        if not acc.events:
            return 0.0
        return float(acc.get_epsilon(self.delta))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrainingPlan":
        return cls(**dict(data))


def _finite_positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise PlanError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def frequency_noise_multiplier(share: float, run_budget: float, order: float) -> float:
    """z of the Gaussian on the category counts that costs at most `share` of the run's RDP
    budget at `order` (ρ = 1/(2z²), RDP α·ρ), rounded up until it does."""
    rho = share * run_budget / order
    z = 1.0 / math.sqrt(2.0 * rho)
    while order / (2.0 * z * z) > share * run_budget:
        z = math.nextafter(z, math.inf)
    return z


def run_order(epsilon: float, delta: float, gate_filter: RenyiFilter | None = None) -> float:
    """α_run: the gate's α* when the run takes the whole budget, else the zCDP-optimal
    order of (ε, δ) (the order of the gate's per-run cap filter)."""
    if gate_filter is not None and epsilon >= gate_filter.epsilon:
        return gate_filter.order
    return RenyiFilter(epsilon, delta).order


def make_plan(*, epsilon: float, delta: float, order: float, max_records: int, epochs: int,
              batch_size: int | None = 500, sampling_rate: float | None = None, max_grad_norm: float = 1.0,
              frequency_share: float = 0.1, n_categorical_columns: int,
              max_noise_multiplier: float = 500.0) -> TrainingPlan:
    """Fix q, T, σ and the frequency noise for a run of `epsilon`, calibrated at `order`."""
    epsilon = _finite_positive("epsilon", epsilon)
    max_grad_norm = _finite_positive("max_grad_norm", max_grad_norm)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise PlanError(f"epochs must be an int >= 1, got {epochs!r}")
    if isinstance(max_records, bool) or not isinstance(max_records, int) or max_records < 1:
        raise PlanError(f"max_records must be an int >= 1, got {max_records!r}")
    if sampling_rate is not None:
        sampling_rate = _finite_positive("sampling_rate", sampling_rate)
        if sampling_rate > 1:
            raise PlanError(f"sampling_rate must be in (0, 1], got {sampling_rate!r}")
        batch_size = max(1, round(sampling_rate * max_records))
    else:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise PlanError(f"batch_size must be an int >= 1, got {batch_size!r}")
        if batch_size > max_records:
            raise PlanError(
                f"batch_size {batch_size} is larger than the data bound max_records = {max_records} "
                "(the policy's public bound on the number of records)")
        sampling_rate = batch_size / max_records
    if not (isinstance(frequency_share, (int, float)) and 0.0 < frequency_share < 1.0):
        raise PlanError(f"frequency_share must be in (0, 1), got {frequency_share!r}")
    run_budget = rdp_budget_at_order(order, epsilon, delta)
    if not run_budget > 0:
        raise PlanError(
            f"epsilon = {epsilon} is too small for any plan at delta = {delta} (no RDP budget at "
            f"order {order:.4g})")
    share = float(frequency_share) if n_categorical_columns > 0 else 0.0
    z_freq = frequency_noise_multiplier(share, run_budget, order) if n_categorical_columns > 0 else None
    dpsgd_budget = run_budget - (0.0 if z_freq is None else order / (2.0 * z_freq * z_freq))
    steps_per_epoch = math.ceil(1.0 / sampling_rate)
    steps = epochs * steps_per_epoch
    # calibrate_dpsgd_noise speaks ε; the ε whose budget at α* is `dpsgd_budget` is the
    # forward conversion at α* (its inverse), then a guard loop absorbs the rounding.
    eps_sgd = float(epsilon_at_order(order, dpsgd_budget, delta))
    if not eps_sgd > 0:
        raise PlanError(f"epsilon = {epsilon} leaves no budget for DP-SGD at delta = {delta}")
    if float(event_rdp(PoissonSubsampledGaussianEvent(sampling_rate, max_noise_multiplier, steps), [order])[0]) \
            > dpsgd_budget:
        raise PlanError(
            f"epsilon = {epsilon} is too small for {steps} DP-SGD steps at sampling rate {sampling_rate:.4g}: "
            f"even a noise multiplier of {max_noise_multiplier:g} would overspend; "
            "use fewer epochs, a smaller batch or more epsilon")
    try:
        sigma = calibrate_dpsgd_noise(eps_sgd, delta, sampling_rate, steps, order=order)
    except ValueError as exc:
        raise PlanError(
            f"epsilon = {epsilon} is too small for {steps} DP-SGD steps at sampling rate {sampling_rate:.4g}: "
            f"{exc}; use fewer epochs, a smaller batch or more epsilon") from None
    if sigma > max_noise_multiplier:
        raise PlanError(
            f"epsilon = {epsilon} is too small for {steps} DP-SGD steps at sampling rate {sampling_rate:.4g}: "
            f"the noise multiplier would be {sigma:.4g} (> {max_noise_multiplier:g}, nothing could be learnt); "
            "use fewer epochs, a larger batch or more epsilon")
    plan = TrainingPlan(
        epsilon=epsilon, delta=float(delta), order=float(order), run_budget=run_budget,
        frequency_share=share, frequency_noise_multiplier=z_freq, sampling_rate=float(sampling_rate),
        batch_size=int(batch_size), max_records=max_records, epochs=epochs, steps_per_epoch=steps_per_epoch,
        steps=steps, noise_multiplier=sigma, max_grad_norm=max_grad_norm)
    while plan.cost() > run_budget:
        sigma = math.nextafter(sigma, math.inf) * (1 + 1e-12)
        plan = TrainingPlan(**{**plan.to_dict(), "noise_multiplier": sigma})
    return plan

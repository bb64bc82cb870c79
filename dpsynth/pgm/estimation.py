"""Estimating a graphical model from noisy marginal measurements (Private-PGM).

Problem (McKenna, Sheldon, Miklau, "Graphical-model based estimation and
inference for differential privacy", ICML 2019): given noisy answers
``y_i = M_{C_i}(data) + N(0, sigma_i^2)`` find marginals ``mu`` in the
(scaled) marginal polytope minimising

    L(mu) = sum_i  weight_i / (2 sigma_i) * || mu_{C_i} - y_i ||_2^2

(mbi's L2 loss; the factor 1/2 only rescales the step size).  Any such
optimum is attained by a graphical model whose cliques are the measured ones,
so we optimise its log-potentials ``theta`` by entropic mirror descent on the
marginals, which in natural parameters is the update
``theta <- theta - alpha * grad_mu L(mu(theta))``, with an Armijo
backtracking line search on ``alpha`` (grow by 1 % on success, halve on
failure).  ``mu(theta)`` comes from belief propagation on one junction tree
built once per call.

Stopping uses the Frank-Wolfe duality gap, which bounds the suboptimality
of the current iterate because L is convex over the marginal polytope:
``gap = <grad, mu> - min_vertex <grad, s>``, the minimum being a min-sum pass
on the same tree.  We stop when ``gap <= tol * (|L| + total)``
(checked every few iterations) or after ``iters`` iterations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from .clique_vector import CliqueVector
from .domain import Domain
from .factor import DTYPE, Factor, resolve_device
from .model import GraphicalModel, ParameterMap


@dataclass(frozen=True)
class Measurement:
    """A noisy marginal: ``values`` ~ counts over ``clique`` plus Gaussian noise of std ``sigma``.

    ``values`` has shape ``domain.project(clique).shape`` with axes in ``clique``
    order.  ``weight`` scales this measurement's term in the loss.
    """

    clique: tuple[str, ...]
    values: np.ndarray = field(repr=False)
    sigma: float
    weight: float = 1.0

    def __post_init__(self):
        clique = (self.clique,) if isinstance(self.clique, str) else tuple(self.clique)
        object.__setattr__(self, "clique", clique)
        if not all(isinstance(a, str) for a in clique) or not clique:
            raise ValueError(f"measurement clique must be a non-empty tuple of attribute names, got {clique!r}")
        sigma, weight = float(self.sigma), float(self.weight)
        if not math.isfinite(sigma) or sigma <= 0:
            raise ValueError(f"measurement on {clique}: sigma must be positive and finite, got {self.sigma}")
        if not math.isfinite(weight) or weight <= 0:
            raise ValueError(f"measurement on {clique}: weight must be positive and finite, got {self.weight}")
        values = np.asarray(self.values, dtype=np.float64)
        if not np.all(np.isfinite(values)):
            raise ValueError(f"measurement on {clique}: values must be finite")
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "sigma", sigma)
        object.__setattr__(self, "weight", weight)


def _validate(domain: Domain, m: Measurement) -> None:
    unknown = [a for a in m.clique if a not in domain]
    if unknown:
        raise ValueError(f"measurement on {m.clique}: attribute(s) {unknown} not in the domain")
    if len(set(m.clique)) != len(m.clique):
        raise ValueError(f"measurement on {m.clique}: repeated attribute")
    want = domain.project(m.clique).shape
    if m.values.shape != want:
        raise ValueError(f"measurement on {m.clique}: values have shape {m.values.shape}, the clique's domain is {want}")


def estimate_total(domain: Domain, measurements: Sequence[Measurement]) -> float:
    """Inverse-variance weighted estimate of the record count from the measurements' sums.

    The sum of a noisy marginal over ``k`` cells has noise variance ``k sigma^2``.
    """
    num = den = 0.0
    for m in measurements:
        var = m.sigma**2 * domain.size(m.clique)
        num += float(m.values.sum()) / var
        den += 1.0 / var
    return max(1.0, num / den) if den > 0 else 1.0


class _Objective:
    """L(mu) = 1/2 <a, mu^2> - <b, mu> + c over the flat vector of parameter-clique marginals.

    ``a`` and ``b`` are per-cell: ``a = sum_i w_i/sigma_i`` and
    ``b = sum_i (w_i/sigma_i) y_i`` over the measurements of each cell's clique
    (zero on unmeasured cliques), so several measurements of one clique, and all
    cliques together, cost a handful of vector operations.
    """

    def __init__(self, domain: Domain, params: ParameterMap, measurements: Sequence[Measurement], device):
        cliques = params.tree.cliques
        index = {cl: i for i, cl in enumerate(cliques)}
        a = [torch.zeros(s, dtype=DTYPE, device=device) for s in params.param_sizes]
        b = [torch.zeros(s, dtype=DTYPE, device=device) for s in params.param_sizes]
        self.c = 0.0
        for m in measurements:
            key = domain.canonical(m.clique)
            i = index[key]
            y = torch.as_tensor(m.values, dtype=DTYPE, device=device).permute([m.clique.index(x) for x in key])
            coef = m.weight / m.sigma
            a[i] += coef
            b[i] += coef * y.reshape(-1)
            self.c += 0.5 * coef * float((y * y).sum())
        self.a = params.flatten(a)
        self.b = params.flatten(b)

    def __call__(self, mu: torch.Tensor) -> tuple[float, torch.Tensor]:
        grad = self.a * mu - self.b
        # 1/2 a mu^2 - b mu = 1/2 (grad - b) mu
        return float(torch.dot(grad - self.b, mu)) * 0.5 + self.c, grad


def estimate(
    domain: Domain,
    measurements: Sequence[Measurement],
    *,
    iters: int = 3000,
    warm_start: GraphicalModel | None = None,
    cliques: Sequence[tuple[str, ...]] = (),
    total: float | None = None,
    device: str | torch.device | None = None,
    tol: float = 1e-6,
    check_every: int = 25,
) -> GraphicalModel:
    """Fit a graphical model to noisy marginals by mirror descent (see module docstring).

    Args:
        domain: the full domain; the model covers every attribute.
        measurements: noisy marginals (each validated against ``domain``).
        iters: maximum number of mirror-descent iterations.
        warm_start: a previous model on the same domain; its potentials start the
            optimisation (and its cliques are kept in the model).
        cliques: extra cliques to include in the model structure.
        total: the known number of records; by default estimated from the
            measurements (:func:`estimate_total`).
        device: torch device (default CUDA when available, else CPU).
        tol: stop when the Frank-Wolfe duality gap is at most
            ``tol * (|loss| + total)``; 0 runs all ``iters``.
        check_every: iterations between duality-gap checks.

    Returns:
        The fitted :class:`GraphicalModel`; ``model.fit_info`` records the
        iterations run, the final loss and the last duality gap.
    """
    if not isinstance(domain, Domain):
        raise TypeError("domain must be a dpsynth.pgm.Domain")
    measurements = list(measurements)
    for m in measurements:
        if not isinstance(m, Measurement):
            raise TypeError("measurements must be dpsynth.pgm.Measurement objects")
        _validate(domain, m)
    if int(iters) != iters or iters < 0:
        raise ValueError(f"iters must be a non-negative integer, got {iters}")
    dev = resolve_device(device)
    if total is None:
        total = estimate_total(domain, measurements)
    total = float(total)
    if not math.isfinite(total) or total <= 0:
        raise ValueError(f"total must be positive and finite, got {total}")

    all_cliques = [m.clique for m in measurements] + [tuple(cl) for cl in cliques]
    if warm_start is not None:
        if warm_start.domain != domain:
            raise ValueError("warm_start model is over a different domain")
        all_cliques += warm_start.cliques
    for cl in cliques:
        domain.check(cl, "clique")
    start = CliqueVector.zeros(domain, [domain.canonical(cl) for cl in all_cliques], dev)
    model = GraphicalModel(domain, start, total, dev)
    params = model.parameter_map
    thetas = [model.potentials[cl].values for cl in model.cliques]
    if warm_start is not None:
        index = {cl: i for i, cl in enumerate(model.cliques)}
        for cl in warm_start.cliques:
            thetas[index[cl]] = warm_start.potentials[cl].values.to(dev)
    theta = params.flatten(thetas).clone()
    objective = _Objective(domain, params, measurements, dev)

    def oracle(th: torch.Tensor) -> torch.Tensor:
        beliefs, _ = params.bp.calibrate(params.potentials_flat(th))
        return params.project_flat([torch.exp(b) for b in beliefs]) * total

    def gap_of(mu: torch.Tensor, grad: torch.Tensor) -> float:
        # min over vertices (point masses at one x, times total) of <grad, vertex>.
        vertex = float(params.bp.min_sum(params.potentials_flat(grad))) * total
        return float(torch.dot(grad, mu)) - vertex

    mu = oracle(theta)
    loss, grad = objective(mu)
    alpha = 2.0 / total
    if warm_start is not None and "step" in getattr(warm_start, "fit_info", {}):
        alpha = warm_start.fit_info["step"]
    gap = math.inf
    done = 0
    for t in range(int(iters)):
        if tol > 0 and t % check_every == 0:
            gap = gap_of(mu, grad)
            if gap <= tol * (abs(loss) + total):
                break
        trial = theta - alpha * grad
        mu2 = oracle(trial)
        loss2, grad2 = objective(mu2)
        # Armijo condition for mirror descent (sufficient decrease vs. the linearisation).
        if loss - loss2 >= 0.5 * alpha * float(torch.dot(grad, mu - mu2)):
            theta, mu, loss, grad = trial, mu2, loss2, grad2
            alpha *= 1.01
        else:
            alpha *= 0.5
        done = t + 1
    if tol > 0 and done == iters:
        gap = gap_of(mu, grad)

    theta = params.split_params(theta)
    potentials = CliqueVector({cl: Factor(domain.project(cl), th) for cl, th in zip(model.cliques, theta)})
    fitted = GraphicalModel(domain, potentials, total, dev)
    fitted.fit_info = {"iterations": done, "loss": loss, "gap": gap, "step": alpha}
    return fitted

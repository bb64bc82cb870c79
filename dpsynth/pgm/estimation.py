"""Estimating a graphical model from noisy marginal measurements (Private-PGM).

Problem (McKenna, Sheldon, Miklau, "Graphical-model based estimation and
inference for differential privacy", ICML 2019): given noisy answers
``y_i = M_{C_i}(data) + N(0, sigma_i^2)`` find marginals ``mu`` in the
(scaled) marginal polytope minimising

    L(mu) = sum_i  weight_i / (2 sigma_i) * || mu_{C_i} - y_i ||_2^2

(mbi's L2 loss; the factor 1/2 only rescales the step size).  Any such
optimum is attained (or approached, on the boundary) by a graphical model
whose cliques are the measured ones,
so we optimise its log-potentials ``theta`` by entropic mirror descent on the
marginals, which in natural parameters is the update
``theta <- theta - alpha * grad_mu L(mu(theta))``, with an Armijo
backtracking line search on ``alpha`` (grow by 1 % on success, halve on
failure).  ``mu(theta)`` comes from belief propagation on one junction tree
built once per call.

The default solver adds Nesterov momentum (FISTA form, with adaptive
restart) to those mirror-descent steps; on adult_hd's MST problem it reaches
in about 1,000 iterations the loss that 10,000 plain mirror-descent
iterations (mbi's MST setting) reach, and both solvers reach
the optimum of an independent full-joint solver in the tests.  We stop when
the loss improved by less than ``tol`` (relative) over ``check_every``
iterations, or after ``iters`` iterations.  The Frank-Wolfe duality gap
``<grad, mu> - min_vertex <grad, vertex>`` (a min-sum pass on the same tree)
bounds the suboptimality, since L is convex over the marginal polytope; it is
reported on request.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from .clique_vector import CliqueVector
from .domain import Domain
from .factor import DTYPE, Factor, resolve_device, small_work_threads
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
        # Written as 1/2 sum a (mu - b/a)^2 + const: a sum of non-negative terms,
        # so loss differences near the optimum do not cancel catastrophically.
        measured = self.a > 0
        self.target = torch.where(measured, self.b / torch.where(measured, self.a, 1.0), 0.0)
        self.const = self.c - 0.5 * float((self.b * self.target).sum())

    def __call__(self, mu: torch.Tensor) -> tuple[float, torch.Tensor]:
        residual = mu - self.target
        grad = self.a * residual
        return 0.5 * float(torch.dot(grad, residual)) + self.const, grad


def estimate(
    domain: Domain,
    measurements: Sequence[Measurement],
    *,
    iters: int = 2000,
    warm_start: GraphicalModel | None = None,
    cliques: Sequence[tuple[str, ...]] = (),
    total: float | None = None,
    device: str | torch.device | None = None,
    tol: float = 1e-4,
    check_every: int = 50,
    method: str = "accelerated",
    report_gap: bool = False,
    precision: str = "float64",
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
        tol: stop when the loss improved by less than ``tol * |loss|`` over the
            last ``check_every`` iterations; 0 runs all ``iters``.
        check_every: iterations between convergence checks.
        method: ``"accelerated"`` (default: mirror descent with Nesterov
            momentum, backtracking and adaptive restart) or ``"mirror"``
            (plain mirror descent with Armijo backtracking, as in mbi).
        report_gap: also compute the Frank-Wolfe duality gap of the result
            (an upper bound on ``loss - optimum``) into ``fit_info["gap"]``.
        precision: ``"float64"`` (default) or ``"float32"``: the dtype of belief
            propagation and of the marginal projections (the oracle, nearly all the
            work).  The parameters, gradient, loss and line search stay float64;
            with float32 the sufficient-decrease test allows for its rounding
            (``_slack``), and the fit ends near, not at, the optimum (its noise floor).  About 2.5x less CPU per oracle call on large models;
            AIM uses it for its per-round refits and float64 for the final fit.

    Returns:
        The fitted :class:`GraphicalModel`; ``model.fit_info`` records the
        iterations run, oracle evaluations, the final loss, the step size
        (reused by a warm start) and optionally the duality gap.
    """
    if not isinstance(domain, Domain):
        raise TypeError("domain must be a dpsynth.pgm.Domain")
    measurements = list(measurements)
    for m in measurements:
        if not isinstance(m, Measurement):
            raise TypeError("measurements must be dpsynth.pgm.Measurement objects")
        _validate(domain, m)
    if tol < 0 or not math.isfinite(tol):
        raise ValueError(f"tol must be finite and >= 0, got {tol}")
    if int(check_every) != check_every or check_every < 1:
        raise ValueError(f"check_every must be a positive integer, got {check_every}")
    if int(iters) != iters or iters < 0:
        raise ValueError(f"iters must be a non-negative integer, got {iters}")
    if precision not in _ROUNDING:
        raise ValueError(f"precision must be 'float64' or 'float32', got {precision!r}")
    oracle_dtype = torch.float32 if precision == "float32" else DTYPE
    rounding = _ROUNDING[precision]
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
        probs, _ = params.bp.calibrate_probabilities(params.potentials_flat(th.to(oracle_dtype)))
        return params.project_flat(probs).to(DTYPE) * total

    def gap_of(mu: torch.Tensor, grad: torch.Tensor) -> float:
        # min over vertices (point masses at one x, times total) of <grad, vertex>.
        vertex = float(params.bp.min_sum(params.potentials_flat(grad))) * total
        return float(torch.dot(grad, mu)) - vertex

    def evaluate(th: torch.Tensor):
        mu = oracle(th)
        loss, grad = objective(mu)
        return mu, loss, grad

    alpha = 2.0 / total
    if warm_start is not None and "step" in getattr(warm_start, "fit_info", {}):
        # Reuse the step size the previous fit had grown to (never below the cold start).
        alpha = max(float(warm_start.fit_info["step"]), alpha)
    solver = _accelerated if method == "accelerated" else _mirror_descent if method == "mirror" else None
    if solver is None:
        raise ValueError(f"method must be 'accelerated' or 'mirror', got {method!r}")
    with small_work_threads(params.device, max(params.max_sizes, default=0)):
        theta, loss, alpha, done, evaluations = solver(evaluate, theta, alpha, int(iters), tol, check_every,
                                                       rounding)
        gap = gap_of(*evaluate(theta)[::2]) if report_gap else None
    theta = params.split_params(theta)
    potentials = CliqueVector({cl: Factor(domain.project(cl), th) for cl, th in zip(model.cliques, theta)})
    fitted = GraphicalModel(domain, potentials, total, dev)
    fitted.fit_info = {"iterations": done, "evaluations": evaluations, "loss": loss, "gap": gap,
                       "step": alpha, "method": method, "precision": precision}
    return fitted


def _converged(history: list[float], tol: float, rejected: int, window: int) -> bool:
    """Small improvement over the last window, and not merely because steps were being halved."""
    return (tol > 0 and len(history) >= 2 and rejected <= window // 2
            and history[-2] - history[-1] <= tol * abs(history[-1]))


# Relative error of the oracle's marginals, per precision (None: float64, whose
# allowance stays the historical 1e-12 of the loss).  A float32 oracle's marginals carry
# ~1e-6 relative error (exp of log-potentials of magnitude ~10, float32 epsilon 6e-8).
_ROUNDING = {"float64": None, "float32": 1e-6}


def _slack(rounding: float | None, loss: float, mu: torch.Tensor, grad: torch.Tensor) -> float:
    """How far rounding alone can move the loss: 1e-12 of it in float64; in float32 the
    first-order effect of a relative error ``rounding`` in every marginal cell,
    ``rounding * sum |grad| |mu|`` (it can be far above the loss itself when the fit is
    good and the counts large)."""
    if rounding is None:
        return 1e-12 * abs(loss)
    return 1e-12 * abs(loss) + rounding * float(torch.dot(grad.abs(), mu.abs()))


def _sufficient_decrease(loss: float, new_loss: float, alpha: float, predicted: float,
                         slack: float) -> bool:
    """Armijo test for mirror descent, with an allowance ``slack`` for floating-point rounding.

    Without the allowance, near the optimum every step "fails" by rounding
    error and the step size collapses to nothing (which would also cripple a
    warm start that inherits it).
    """
    return loss - new_loss >= 0.5 * alpha * predicted - slack


def _mirror_descent(evaluate, theta, alpha, iters, tol, check_every, rounding=None):
    """Entropic mirror descent with Armijo backtracking (mbi's algorithm)."""
    mu, loss, grad = evaluate(theta)
    evaluations, done, history, rejected = 1, 0, [loss], 0
    for t in range(iters):
        trial = theta - alpha * grad
        mu2, loss2, grad2 = evaluate(trial)
        evaluations += 1
        if _sufficient_decrease(loss, loss2, alpha, float(torch.dot(grad, mu - mu2)),
                                _slack(rounding, loss, mu, grad)):
            theta, mu, loss, grad = trial, mu2, loss2, grad2
            alpha *= 1.01
        else:
            alpha *= 0.5
            rejected += 1
        done = t + 1
        if done % check_every == 0:
            history.append(loss)
            if _converged(history, tol, rejected, check_every):
                break
            rejected = 0
    return theta, loss, alpha, done, evaluations


def _accelerated(evaluate, theta, alpha, iters, tol, check_every, rounding=None):
    """Mirror descent with Nesterov momentum in the natural parameters (FISTA form).

    The gradient step is taken from an extrapolated point ``y``; the step size
    is backtracked with the same Armijo test as mirror descent, and momentum is
    reset whenever the loss goes up (O'Donoghue & Candes' adaptive restart),
    which keeps the iterates monotone in loss.
    """
    y = theta
    mu_y, loss_y, grad_y = evaluate(y)
    best, momentum = loss_y, 1.0
    evaluations, done, history, rejected = 1, 0, [best], 0
    for t in range(iters):
        trial = y - alpha * grad_y
        mu_t, loss_t, grad_t = evaluate(trial)
        evaluations += 1
        if _sufficient_decrease(loss_y, loss_t, alpha, float(torch.dot(grad_y, mu_y - mu_t)),
                                _slack(rounding, loss_y, mu_y, grad_y)):
            alpha *= 1.01
            if loss_t > best:
                # Momentum overshot: restart from the best point without it.
                momentum, y = 1.0, theta
                mu_y, loss_y, grad_y = evaluate(y)
                evaluations += 1
            else:
                following = (1.0 + math.sqrt(1.0 + 4.0 * momentum * momentum)) / 2.0
                y = trial + ((momentum - 1.0) / following) * (trial - theta)
                theta, best, momentum = trial, loss_t, following
                if momentum == 1.0:
                    mu_y, loss_y, grad_y = mu_t, loss_t, grad_t
                else:
                    mu_y, loss_y, grad_y = evaluate(y)
                    evaluations += 1
        else:
            alpha *= 0.5
            rejected += 1
        done = t + 1
        if done % check_every == 0:
            history.append(best)
            if _converged(history, tol, rejected, check_every):
                break
            rejected = 0
    return theta, best, alpha, done, evaluations

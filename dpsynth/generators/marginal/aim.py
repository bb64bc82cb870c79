"""AIM (McKenna, Mullins, Sheldon, Miklau 2022): adaptive, iterative, workload-aware.

1. Initialise with every 1-way marginal, measured with σ.
2. Rounds: select the candidate marginal the current model answers worst,
   by the exponential mechanism (10 % of a round's ρ), scoring
   w_r·(‖M_r(D) − M_r(p̂)‖₁ − √(2/π)·σ·n_r); measure it with the discrete
   Gaussian (90 %); refit the model (warm-started).  Candidates are the
   workload's downward closure whose junction tree stays under a size cap that
   grows with the budget used (max_model_size · ρ_used/ρ).  When a
   measurement barely moved the model, σ is halved (and the selection ε
   doubled).  When what is left cannot pay for two more rounds, the last round
   takes all of it: the budget is spent exactly.
3. Fit the final model with more iterations and sample.

See proofs/aim.md for the privacy statement.
"""

from __future__ import annotations

import math
import time
from typing import Any, Iterable, Mapping

import numpy as np

from accountant.events import NeighbouringRelation

from .base import MarginalGenerator
from .budget import em_epsilon_for_rho, marginal_l2_sensitivity, rho_of_sigma, sigma_for_rho
from .compression import Compression
from .run import MeasurementRun
from .workload import all_k_way, candidate_weights, downward_closure, favoured_workload, normalise_workload

__all__ = ["AIM"]

_MB_PER_CELL = 8 / 2**20  # float64 potentials, as mbi's hypothetical_model_size
# Per-round (warm-started) refits of a large model get fewer iterations, about
# iters x _ROUND_CELLS cell-iterations each: at high ε the model reaches millions of
# cells and full refits every round would take hours (mbi's docstring warns of
# "many hours").  The model size is public, so this choice depends on nothing private.
_ROUND_CELLS = 2**19
_MIN_ROUND_ITERS = 50
# The final fit likewise: full final_iters up to 2^18 cells, proportionally fewer above.
_FINAL_CELLS = 2**18
_MIN_FINAL_ITERS = 100
# Per-round refits of models this large run belief propagation in float32 (about 2.5x
# less CPU per oracle call; the final fit stays float64, warm-started from them).  Below
# it the refits are cheap and stay float64.  Post-processing: the size is public.
_FLOAT32_CELLS = 2**16


class AIM(MarginalGenerator):
    """AIM with the paper's defaults.

    Args:
        epsilon: this run's share of the dataset's budget, at the policy's δ.
        workload: cliques (or {clique: weight}); default all `degree`-way marginals.
        degree: size of the default workload's marginals (3).
        rounds: T, the planned number of rounds (default 16·d).
        max_model_size: cap on the model's junction-tree size, in MB of float64 cells (80).
        favour: columns whose marginals matter most (e.g. the sensitive columns and the
            target, docs/fairness.md): every workload clique holding k of them has its
            weight multiplied by favour_weight**k.  Public, chosen before any measurement;
            the selection's sensitivity grows with the largest candidate weight, which the
            table computes from the weights (proofs/aim.md), so ε is unchanged.
        favour_weight: the factor (>= 1; default 4).
        iters: estimation iterations per round (warm-started; fewer for models over
            2^19 cells, see `_round_iters`); final_iters caps the last fit (fewer above
            2^18 cells; it stops earlier when the loss has converged).
    """

    generator_name = "aim"

    def __init__(self, *, epsilon: float, workload: Iterable | Mapping | None = None, degree: int = 3,
                 rounds: int | None = None, max_model_size: float = 80.0, iters: int = 300,
                 final_iters: int = 3000, favour: Iterable[str] = (), favour_weight: float = 4.0,
                 device: str = "auto", progress: bool = False) -> None:
        super().__init__(epsilon=epsilon, device=device, progress=progress)
        favour = list(favour) if not isinstance(favour, (str, bytes)) else favour
        if isinstance(favour, (str, bytes)) or not all(isinstance(c, str) for c in favour):
            raise TypeError(f"favour must be a list of column names, got {favour!r}")
        self.favour = list(dict.fromkeys(favour))
        if isinstance(favour_weight, bool) or not isinstance(favour_weight, (int, float)) or not (
                math.isfinite(favour_weight) and favour_weight >= 1):
            raise ValueError(f"favour_weight must be a finite number >= 1, got {favour_weight!r}")
        self.favour_weight = float(favour_weight)
        for name, v in (("degree", degree), ("iters", iters), ("final_iters", final_iters)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an int >= 1, got {v!r}")
        if rounds is not None and (isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1):
            raise ValueError(f"rounds must be an int >= 1, got {rounds!r}")
        if not (isinstance(max_model_size, (int, float)) and math.isfinite(max_model_size) and max_model_size > 0):
            raise ValueError(f"max_model_size must be a finite number > 0 (MB), got {max_model_size!r}")
        self.workload = None if workload is None else _as_weighted(workload)
        self.degree = degree
        self.rounds = rounds
        self.max_model_size = float(max_model_size)
        self.iters = iters
        self.final_iters = final_iters

    def config(self) -> dict[str, Any]:
        workload = None if self.workload is None else [[list(c), w] for c, w in self.workload.items()]
        return {"epsilon": self.epsilon, "workload": workload, "degree": self.degree, "rounds": self.rounds,
                "max_model_size": self.max_model_size, "iters": self.iters, "final_iters": self.final_iters,
                # Only when set: a model sealed before the option existed keeps its config.
                **({"favour": list(self.favour), "favour_weight": self.favour_weight} if self.favour else {})}

    def _workload(self, attrs: list[str]) -> dict[tuple[str, ...], float]:
        """The run's weighted workload (public: column names and the options only)."""
        unknown = [c for c in self.favour if c not in attrs]
        if unknown:
            raise ValueError(f"favour: unknown column {unknown[0]!r}")
        workload = normalise_workload(self.workload if self.workload is not None
                                      else all_k_way(attrs, self.degree), attrs)
        return favoured_workload(workload, self.favour, self.favour_weight)

    def _round_budget(self, d: int, rho: float, l2: float) -> tuple[int, float, float]:
        """(T, σ of a round's measurement, ε of a round's selection) for a run of ρ."""
        rounds = self.rounds or 16 * d
        sigma = sigma_for_rho(0.9 * rho / rounds, l2)
        epsilon = em_epsilon_for_rho(0.1 * rho / rounds)
        if d * rho_of_sigma(sigma, l2) + rho_of_sigma(sigma, l2) + epsilon**2 / 8.0 > rho:
            # The initialisation measures d marginals at a round's σ; with T ≤ d it would
            # eat the whole grant before the first round.  Refuse before measuring anything.
            raise ValueError(f"rounds={rounds} is too few for {d} columns (AIM's 1-way initialisation "
                             f"alone costs {d} rounds' measurement budget); use rounds > {d}")
        return rounds, sigma, epsilon

    def _check_run(self, sizes: Mapping[str, int], rho: float, relation: NeighbouringRelation) -> None:
        attrs = list(sizes)
        self._workload(attrs)
        self._round_budget(len(attrs), rho, marginal_l2_sensitivity(relation))

    def _fit(self, run: MeasurementRun) -> None:
        from dpsynth.pgm import Domain, Measurement, estimate, junction_tree_size
        from dpsynth.pgm.junction_tree import junction_tree_sizes_with

        t0 = time.perf_counter()
        sizes = dict(run.table.domain)
        attrs = list(sizes)
        d = len(attrs)
        self.compression = Compression.identity(sizes)
        domain = Domain(attrs, [sizes[a] for a in attrs])
        workload = self._workload(attrs)
        candidates = candidate_weights(workload)
        rho = run.rho
        rounds, sigma, epsilon = self._round_budget(d, rho, run.l2)
        l2 = run.l2
        oneway = [(a,) for a in attrs]
        self._say(f"measuring {d} 1-way marginals (initialisation)")
        answers = run.measure(oneway, [sigma] * d, purpose="AIM: 1-way marginals (initialisation)")
        measurements = [Measurement(tuple(m.clique), np.asarray(m.values, dtype=np.float64), m.sigma)
                        for m in answers]
        model = estimate(domain, measurements, iters=self.iters, device=self.device)
        self._say(f"initial model: {model.size} cells, {model.fit_info['iterations']} estimation iterations")
        log = []
        terminate = False
        bias_factor = math.sqrt(2.0 / math.pi)
        while not terminate:
            round_rho = rho_of_sigma(sigma, l2) + epsilon**2 / 8.0
            if run.rho_left < 2 * round_rho:
                # The last round takes what is left (a hair less, so float rounding never
                # asks the run for more than it was granted).
                left = run.rho_left * (1 - 1e-9)
                sigma = sigma_for_rho(0.9 * left, l2)
                epsilon = em_epsilon_for_rho(0.1 * left)
                terminate = True
            used_after = run.rho_spent + rho_of_sigma(sigma, l2) + epsilon**2 / 8.0
            size_limit = self.max_model_size * used_after / rho
            # Inside a maximal clique of the current tree a candidate costs nothing (mbi's
            # free cliques are the same: the downward closure of its model's maximal cliques).
            free = set(downward_closure(model.tree.maximal))
            priced = [c for c in candidates if c not in free]
            cells = dict(zip(priced, junction_tree_sizes_with(domain, model.cliques, priced)))
            small = [c for c in candidates if c in free or cells[c] * _MB_PER_CELL <= size_limit]
            estimates = model.project_many(small)
            weights = [candidates[c] for c in small]
            offsets = [-candidates[c] * bias_factor * sigma * domain.size(c) for c in small]
            i = run.select(small, estimates, epsilon, weights=weights, offsets=offsets,
                           purpose="AIM: select a marginal (exponential mechanism)")
            chosen = small[i]
            self._say(f"round {len(log) + 1}: measuring {' x '.join(chosen)} "
                      f"({100 * used_after / rho:.0f} % of the run's budget after it)")
            (m,) = run.measure([chosen], [sigma], purpose="AIM: measure the selected marginal")
            measurements.append(Measurement(tuple(m.clique), np.asarray(m.values, dtype=np.float64), m.sigma))
            before = estimates[i]
            cells = junction_tree_size(domain, [*model.cliques, chosen])
            started = time.perf_counter()
            model = estimate(domain, measurements, iters=self._round_iters(cells), warm_start=model,
                             device=self.device, precision="float32" if cells >= _FLOAT32_CELLS else "float64")
            self._say(f"round {len(log) + 1}: model {model.size} cells in {len(model.tree.maximal)} tables, "
                      f"{model.fit_info['iterations']} estimation iterations ({model.fit_info['precision']}, "
                      f"{time.perf_counter() - started:.1f} s); {len(small)} of {len(candidates)} candidates "
                      "under the size cap")
            after = model.project(chosen)
            moved = float(np.abs(after - before).sum())
            log.append({"clique": list(chosen), "sigma": sigma, "epsilon": epsilon, "moved": moved})
            if not terminate and moved <= bias_factor * sigma * domain.size(chosen):
                sigma /= 2.0
                epsilon *= 2.0
        self.measurements = measurements
        self._say(f"estimating the final model from {len(measurements)} measurements "
                  f"({model.size} cells, at most {self._final_iters(model.size)} iterations)")
        started = time.perf_counter()
        final_iters, done = self._final_iters(model.size), []
        if model.size >= _FLOAT32_CELLS:
            # Large models: the final fit runs in float32 for final_iters + _MIN_FINAL_ITERS
            # iterations.  If the loss stops moving at float32's precision before that, the fit
            # goes on in float64 (the rest of final_iters, at least _MIN_FINAL_ITERS) until it
            # stops moving; otherwise its loss is checked once in float64.  On adult_hd at
            # ε = 10 (3.8M cells) the float32 iterations in place of 100 float64 ones cost 23 %
            # less CPU for the same 3-way TVD (0.03849 against 0.03845; issue 20).
            budget = final_iters + _MIN_FINAL_ITERS
            model = estimate(domain, measurements, iters=budget, warm_start=model, device=self.device,
                             precision="float32")
            ran = model.fit_info["iterations"]
            done.append(f"{ran} float32 estimation iterations")
            final_iters = max(_MIN_FINAL_ITERS, final_iters - ran) if ran < budget else 0
        self.model = estimate(domain, measurements, iters=final_iters, warm_start=model, device=self.device)
        done.append(f"{self.model.fit_info['iterations']} float64 estimation iterations" if final_iters else
                    f"a float64 loss check (loss {self.model.fit_info['loss']:.6g})")
        self._say(f"final model: {' + '.join(done)} ({time.perf_counter() - started:.1f} s)")
        self._say("done")
        self.fit_log.update({"rounds": log})
        self.fit_seconds = time.perf_counter() - t0


    def _round_iters(self, cells: int) -> int:
        return _scaled_iters(self.iters, cells, _ROUND_CELLS, _MIN_ROUND_ITERS)

    def _final_iters(self, cells: int) -> int:
        return _scaled_iters(self.final_iters, cells, _FINAL_CELLS, _MIN_FINAL_ITERS)


def _scaled_iters(iters: int, cells: int, reference_cells: int, floor: int) -> int:
    """iters up to reference_cells, then about iters * reference_cells / cells (never
    below floor, never above iters): a roughly constant amount of work per fit."""
    if cells <= reference_cells:
        return iters
    return min(iters, max(floor, iters * reference_cells // cells))


def _as_weighted(workload: Iterable | Mapping) -> dict[tuple[str, ...], float]:
    """A workload as {clique: weight}: from a mapping, a list of cliques (weight 1), or a
    list of [clique, weight] pairs (the saved form)."""
    if isinstance(workload, Mapping):
        return {tuple(c): float(w) for c, w in workload.items()}
    out: dict[tuple[str, ...], float] = {}
    for item in workload:
        if (isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], (list, tuple))
                and isinstance(item[1], (int, float)) and not isinstance(item[1], bool)):
            clique, weight = tuple(item[0]), float(item[1])
        elif isinstance(item, str):
            raise ValueError(f"workload: a clique must be a sequence of column names, got the string {item!r}")
        else:
            clique, weight = tuple(item), 1.0
        out[clique] = out.get(clique, 0.0) + weight
    return out

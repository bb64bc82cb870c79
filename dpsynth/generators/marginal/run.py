"""One fit's access to the private table: every measurement charged, counted and kept.

`MeasurementRun` is the only way a marginal generator touches a
`PrivateTable`.  It forwards each measurement (the table charges the gate
before it computes and commits to the output before it releases it), keeps
the charge's event, its ρ and the released output (the model keeps every
output, so an auditor can re-derive the model from the committed ones), and
refuses a measurement that would take the run past the ρ it was granted — so a
bug in a generator's budget split fails loudly instead of borrowing from the
dataset's remaining budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from accountant.events import DiscreteGaussianEvent, ExponentialMechanismEvent
from accountant.rdp import event_rho

from .budget import marginal_l2_sensitivity

__all__ = ["MeasurementRun", "RunBudgetError"]


class RunBudgetError(RuntimeError):
    """A generator asked for more than its run was granted (a bug in the generator)."""


@dataclass
class MeasurementRun:
    table: object
    rho: float
    generator: str
    run_id: str
    parameters: Mapping | None = None
    receipts: list = field(default_factory=list)
    spent: list[float] = field(default_factory=list)
    expected_events: list[str] = field(default_factory=list)
    releases: list[tuple[int, str, object]] = field(default_factory=list)   # (charge sequence, kind, output)

    @property
    def l2(self) -> float:
        return marginal_l2_sensitivity(self.table.gate.relation)

    @property
    def rho_spent(self) -> float:
        return math.fsum(self.spent)

    @property
    def rho_left(self) -> float:
        return max(0.0, self.rho - self.rho_spent)

    def _reserve(self, rhos: Sequence[float], what: str) -> None:
        if math.fsum([*self.spent, *rhos]) > self.rho:
            raise RunBudgetError(
                f"{self.generator}: {what} would spend rho {math.fsum(rhos):.6g} but only "
                f"{self.rho_left:.6g} of the run's {self.rho:.6g} is left")

    def _take_receipts(self, before: int, kind: str, output: object) -> None:
        written = list(self.table.receipts)[before:]
        if len(written) != 2 or written[0].kind != "charge" or written[1].kind != "release" \
                or written[1].refs != [written[0].sequence]:
            raise RuntimeError("the private table did not write exactly one charge and its release for the "
                               "measurement")
        charge = written[0]
        self.receipts.extend(written)
        self.expected_events.append(charge.event)
        self.releases.append((charge.sequence, kind, output))

    def measure(self, cliques: Sequence[tuple[str, ...]], sigmas: Sequence[float], *, purpose: str,
                recode: Mapping[str, np.ndarray] | None = None) -> list:
        """Noisy marginals (discrete Gaussian), one gate charge for the batch."""
        sigmas = [float(s) for s in sigmas]
        rhos = [event_rho(DiscreteGaussianEvent(s, self.l2)) for s in sigmas]
        self._reserve(rhos, purpose)
        before = len(self.table.receipts)
        kwargs = {"recode": recode} if recode else {}
        answers = self.table.measure_marginals(list(cliques), sigmas, purpose=purpose, generator=self.generator,
                                               run_id=self.run_id, parameters=self.parameters, **kwargs)
        self._take_receipts(before, "marginals", answers)
        self.spent.extend(rhos)
        return answers

    def select(self, candidates: Sequence[tuple[str, ...]], estimates: Sequence[np.ndarray], epsilon: float, *,
               purpose: str, weights: Sequence[float] | None = None, offsets: Sequence[float] | None = None,
               recode: Mapping[str, np.ndarray] | None = None) -> int:
        """Index of the candidate chosen by the exponential mechanism (bounded range)."""
        rho = event_rho(ExponentialMechanismEvent(float(epsilon)))
        self._reserve([rho], purpose)
        before = len(self.table.receipts)
        kwargs = {"recode": recode} if recode else {}
        index = self.table.select_marginal(list(candidates), list(estimates), float(epsilon), weights=weights,
                                           offsets=offsets, purpose=purpose, generator=self.generator,
                                           run_id=self.run_id, parameters=self.parameters, **kwargs)
        self._take_receipts(before, "select", int(index))
        self.spent.append(rho)
        return int(index)

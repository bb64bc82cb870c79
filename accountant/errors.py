"""The errors (and the one warning) the gate and the ledger raise."""

from __future__ import annotations

__all__ = ["PolicyViolation", "BudgetExceeded", "RunCapExceeded", "ActorCapExceeded", "RequestConflict",
           "InvalidReceipt", "DatasetMismatch", "LedgerIntegrityError", "InsecureModeWarning"]


class PolicyViolation(ValueError):
    """The charge breaks a rule of the policy (relation, generator, noise source…)."""


class BudgetExceeded(RuntimeError):
    """The charge would take the spend over the budget; nothing was written."""

    def __init__(self, message: str, *, requested: float, remaining: float, budget: float, order: float,
                 epsilon_spent: float, epsilon_budget: float, delta: float, delta_requested: float = 0.0,
                 delta_remaining: float = 0.0, delta_reserve: float = 0.0) -> None:
        super().__init__(message)
        self.delta_requested = delta_requested
        self.delta_remaining = delta_remaining
        self.delta_reserve = delta_reserve
        self.requested = requested
        self.remaining = remaining
        self.budget = budget
        self.order = order
        self.epsilon_spent = epsilon_spent
        self.epsilon_budget = epsilon_budget
        self.delta = delta


class RunCapExceeded(BudgetExceeded):
    """The charge would take one run over the policy's per-run cap; nothing was written."""


class ActorCapExceeded(BudgetExceeded):
    """The charge would take one person over the cap the caller (a team service, from its
    officer-signed roster) set for them on this dataset; nothing was written."""


class RequestConflict(PolicyViolation):
    """A request id that was charged before comes back with a different charge: an
    idempotency key names one request, never two; nothing was written."""


class InvalidReceipt(ValueError):
    """A receipt does not verify (bad signature, unknown entry, other ledger, already used)."""


class DatasetMismatch(ValueError):
    """The table's fingerprint differs from the one the policy governs."""


class LedgerIntegrityError(RuntimeError):
    """The stored ledger is inconsistent with itself (tampered, rolled back, replaced or
    corrupt); the gate stays shut."""


class InsecureModeWarning(UserWarning):
    """A ledger in insecure development mode is in use: its entries are unsigned."""

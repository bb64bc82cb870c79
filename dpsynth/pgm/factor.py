"""Log-space factors: a tensor of log-potentials over a (sub-)domain."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable

import numpy as np
import torch

from .domain import Domain

DTYPE = torch.float64


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` means CUDA when available, else the CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


SMALL_CLIQUE_CELLS = 65536


def waiting_threads_sleep() -> bool:
    """Whether OpenMP's idle threads sleep (``OMP_WAIT_POLICY=PASSIVE``, which ``import
    dpsynth`` sets when torch is not loaded yet) rather than spin.  Read when asked: the
    environment as torch saw it when it loaded, unless someone changed it since."""
    return os.environ.get("OMP_WAIT_POLICY", "").strip().upper() == "PASSIVE"


@contextlib.contextmanager
def small_work_threads(device: torch.device, largest_cells: int):
    """Run work single-threaded on the CPU when more threads would not pay.

    Below ~64k cells per table every tensor operation takes microseconds and
    intra-op threading only adds synchronisation; on a busy machine we
    measured 10x slowdowns with 2 threads.  Above it, several threads help only
    when the idle ones sleep: with libgomp's default (spinning) wait policy, one
    1.5M-cell oracle call took 6x the CPU time on 2 threads than on 1 on a shared
    2-core machine (benchmarks/results/aim_speed.md).  The caller's setting is restored.
    """
    if device.type != "cpu" or torch.get_num_threads() == 1 or (
            largest_cells >= SMALL_CLIQUE_CELLS and waiting_threads_sleep()):
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class Factor:
    """A function of the attributes in ``domain``, stored as log-values.

    ``values[i, j, ...]`` is ``log f(a=i, b=j, ...)`` with axes in ``domain.attrs``
    order.  Arithmetic aligns attributes by name: ``f + g`` is defined on the
    union of the two domains (each operand broadcast along the attributes it
    does not mention), which in log space is the product of the potentials.
    """

    __slots__ = ("domain", "values")

    def __init__(self, domain: Domain, values: torch.Tensor | np.ndarray, device=None):
        if not isinstance(values, torch.Tensor):
            values = torch.as_tensor(np.asarray(values, dtype=np.float64))
        values = values.to(dtype=DTYPE, device=device if device is not None else values.device)
        if tuple(values.shape) != domain.shape:
            raise ValueError(
                f"factor over {domain.attrs} needs shape {domain.shape}, got {tuple(values.shape)}"
            )
        self.domain = domain
        self.values = values

    # ---- constructors -------------------------------------------------
    @classmethod
    def zeros(cls, domain: Domain, device=None) -> "Factor":
        return cls(domain, torch.zeros(domain.shape, dtype=DTYPE, device=resolve_device(device)))

    @classmethod
    def uniform(cls, domain: Domain, device=None) -> "Factor":
        """The log of the uniform distribution over ``domain``."""
        value = -float(np.log(domain.size()))
        return cls(domain, torch.full(domain.shape, value, dtype=DTYPE, device=resolve_device(device)))

    @property
    def device(self) -> torch.device:
        return self.values.device

    # ---- shape manipulation -------------------------------------------
    def transpose(self, attrs: Iterable[str]) -> "Factor":
        """The same factor with axes in the order ``attrs`` (a permutation)."""
        attrs = tuple(attrs)
        if set(attrs) != set(self.domain.attrs) or len(attrs) != len(self.domain):
            raise ValueError(f"transpose needs a permutation of {self.domain.attrs}, got {attrs}")
        perm = self.domain.axes(attrs)
        return Factor(self.domain.project(attrs), self.values.permute(perm))

    def expand(self, domain: Domain) -> "Factor":
        """Broadcast onto a larger domain (constant along the new attributes)."""
        missing = [a for a in self.domain.attrs if a not in domain]
        if missing:
            raise ValueError(f"cannot expand factor over {self.domain.attrs} onto {domain.attrs}")
        for a in self.domain.attrs:
            if domain[a] != self.domain[a]:
                raise ValueError(f"attribute {a!r} has size {self.domain[a]} here and {domain[a]} there")
        order = [a for a in domain.attrs if a in self.domain]
        values = self.values.permute(self.domain.axes(order))
        view = [domain[a] if a in self.domain else 1 for a in domain.attrs]
        return Factor(domain, values.reshape(view).expand(domain.shape))

    def project(self, attrs: Iterable[str] | str) -> "Factor":
        """Sum the potential over the other attributes (logsumexp in log space)."""
        if isinstance(attrs, str):
            attrs = (attrs,)
        attrs = self.domain.check(attrs, "projection")
        drop = tuple(i for i, a in enumerate(self.domain.attrs) if a not in attrs)
        values = torch.logsumexp(self.values, dim=drop) if drop else self.values
        kept = [a for a in self.domain.attrs if a in attrs]
        return Factor(self.domain.project(kept), values).transpose(attrs)

    def logsumexp(self) -> float:
        """Log of the total mass of the potential."""
        return float(torch.logsumexp(self.values.reshape(-1), dim=0))

    def normalize(self) -> "Factor":
        """The log-probability factor proportional to this potential."""
        return Factor(self.domain, self.values - torch.logsumexp(self.values.reshape(-1), dim=0))

    def exp(self) -> torch.Tensor:
        """The potential itself (not its log), as a tensor in ``domain.attrs`` order."""
        return torch.exp(self.values)

    def numpy(self) -> np.ndarray:
        return self.values.detach().cpu().numpy()

    # ---- arithmetic (in log space) ------------------------------------
    def _aligned(self, other: "Factor") -> tuple[Domain, torch.Tensor, torch.Tensor]:
        domain = self.domain.merge(other.domain)
        return domain, self.expand(domain).values, other.expand(domain).values

    def __add__(self, other):
        if isinstance(other, Factor):
            domain, a, b = self._aligned(other)
            return Factor(domain, a + b)
        return Factor(self.domain, self.values + float(other))

    __radd__ = __add__

    def __sub__(self, other):
        if isinstance(other, Factor):
            domain, a, b = self._aligned(other)
            return Factor(domain, a - b)
        return Factor(self.domain, self.values - float(other))

    def __mul__(self, scalar):
        if isinstance(scalar, Factor):
            raise TypeError("Factor * Factor is ambiguous in log space; use + (product of potentials)")
        return Factor(self.domain, self.values * float(scalar))

    __rmul__ = __mul__

    def __neg__(self):
        return Factor(self.domain, -self.values)

    def dot(self, other: "Factor") -> float:
        """Inner product of the two value tensors (same domain, any attribute order)."""
        other = other.transpose(self.domain.attrs) if other.domain != self.domain else other
        return float((self.values * other.values).sum())

    def __repr__(self) -> str:
        return f"Factor({self.domain!r})"

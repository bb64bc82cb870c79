"""A vector indexed by cliques: one :class:`Factor` per clique, with vector arithmetic."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from .domain import Domain
from .factor import Factor


class CliqueVector(Mapping):
    """``{clique: Factor}`` treated as one long vector (the concatenation of the factors).

    This is the natural type for the parameters and for the marginals of a
    graphical model: addition, subtraction and scaling act factor-wise and
    :meth:`dot` is the sum of the factor inner products.
    """

    def __init__(self, factors: Mapping[tuple[str, ...], Factor]):
        self._factors = {tuple(cl): f for cl, f in factors.items()}
        for cl, f in self._factors.items():
            if set(cl) != set(f.domain.attrs):
                raise ValueError(f"clique {cl} holds a factor over {f.domain.attrs}")

    @classmethod
    def zeros(cls, domain: Domain, cliques: Iterable[tuple[str, ...]], device=None) -> "CliqueVector":
        return cls({tuple(cl): Factor.zeros(domain.project(cl), device) for cl in cliques})

    @property
    def cliques(self) -> list[tuple[str, ...]]:
        return list(self._factors)

    def __getitem__(self, clique) -> Factor:
        return self._factors[tuple(clique)]

    def __iter__(self) -> Iterator[tuple[str, ...]]:
        return iter(self._factors)

    def __len__(self) -> int:
        return len(self._factors)

    def _combine(self, other, op) -> "CliqueVector":
        if isinstance(other, CliqueVector):
            if set(other) != set(self):
                raise ValueError("clique vectors are over different cliques")
            return CliqueVector({cl: op(f, other[cl]) for cl, f in self.items()})
        return CliqueVector({cl: op(f, other) for cl, f in self.items()})

    def __add__(self, other):
        return self._combine(other, lambda a, b: a + b)

    def __sub__(self, other):
        return self._combine(other, lambda a, b: a - b)

    def __mul__(self, scalar):
        return CliqueVector({cl: f * scalar for cl, f in self.items()})

    __rmul__ = __mul__

    def __neg__(self):
        return CliqueVector({cl: -f for cl, f in self.items()})

    def dot(self, other: "CliqueVector") -> float:
        return sum(f.dot(other[cl]) for cl, f in self.items())

    def supports(self, clique: Iterable[str]) -> bool:
        """True when some clique of this vector contains every attribute of ``clique``."""
        need = set(clique)
        return any(need <= set(cl) for cl in self)

    def __repr__(self) -> str:
        return f"CliqueVector({self.cliques})"

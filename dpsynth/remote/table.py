"""`RemoteTable`: the marginal path of a `PrivateTable`, answered by a privacy service.

Same methods, arguments and return types as `dpsynth.table.PrivateTable` for
`measure_marginals`, `select_marginal` and `noisy_count`, and the same public
facts (`schema`, `domain`, `relation`, `receipts`, `charges`), so a marginal-based
mechanism written against a local table runs unchanged against the service:

    def my_mechanism(table, rho):
        one_way = table.measure_marginals([(c,) for c in table.schema.names], sigma=...,
                                          purpose="1-way", generator="mine", run_id="run-1")
        ...

    my_mechanism(ServiceClient(url, key="alice.key").table("adult"), rho=0.05)

Each call is one charge in your name, under your cap, released once and
committed in the ledger; the receipts come back with the answer.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

__all__ = ["RemoteTable"]


def _plain(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


class RemoteTable:
    def __init__(self, client: Any, dataset: str) -> None:
        from accountant.events import NeighbouringRelation
        from dpsynth.schema import Schema

        info = client.dataset(dataset)
        self._client = client
        self.dataset = dataset
        self._schema = Schema.from_dict(info["schema"])
        self._relation = NeighbouringRelation(info["policy"]["budget"]["relation"])
        self._receipts: list[Any] = []

    # -- public facts -----------------------------------------------------------------------------
    @property
    def schema(self) -> Any:
        return self._schema

    @property
    def domain(self) -> dict[str, int]:
        return self._schema.domain()

    @property
    def relation(self) -> Any:
        return self._relation

    @property
    def receipts(self) -> tuple[Any, ...]:
        return tuple(self._receipts)

    @property
    def charges(self) -> tuple[Any, ...]:
        return tuple(r for r in self._receipts if r.kind == "charge")

    def __repr__(self) -> str:
        return f"RemoteTable(dataset={self.dataset!r}, columns={list(self._schema.names)}, rows=<on the service>)"

    def _measure(self, kind: str, args: Mapping[str, Any]) -> Any:
        from accountant.receipt import Receipt
        from .protocol import decode_answer

        result = self._client.measure(self.dataset, kind, _plain({k: v for k, v in args.items() if v is not None}))
        self._receipts.extend(Receipt.from_dict(r) for r in result["receipts"])
        return decode_answer(kind, result["answer"])

    # -- the marginal path -------------------------------------------------------------------------
    def measure_marginals(self, cliques: Sequence[tuple[str, ...]], sigma: float | Sequence[float], *,
                          purpose: str, generator: str, run_id: str, parameters: dict | None = None,
                          recode: Mapping[str, np.ndarray] | None = None) -> list[Any]:
        return self._measure("marginals", {"cliques": [list(c) for c in cliques], "sigma": sigma,
                                           "purpose": purpose, "generator": generator, "run_id": run_id,
                                           "parameters": parameters, "recode": recode})

    def select_marginal(self, candidates: Sequence[tuple[str, ...]], estimates: Sequence[np.ndarray],
                        epsilon: float, *, weights: Sequence[float] | None = None,
                        offsets: Sequence[float] | None = None, purpose: str, generator: str, run_id: str,
                        parameters: dict | None = None, recode: Mapping[str, np.ndarray] | None = None) -> int:
        return self._measure("select", {"candidates": [list(c) for c in candidates],
                                        "estimates": [np.asarray(e, dtype=np.float64) for e in estimates],
                                        "epsilon": epsilon, "weights": weights, "offsets": offsets,
                                        "purpose": purpose, "generator": generator, "run_id": run_id,
                                        "parameters": parameters, "recode": recode})

    def noisy_count(self, sigma: float, *, purpose: str, generator: str | None = None, run_id: str | None = None,
                    parameters: dict | None = None) -> int:
        return self._measure("count", {"sigma": sigma, "purpose": purpose, "generator": generator, "run_id": run_id,
                                       "parameters": parameters})

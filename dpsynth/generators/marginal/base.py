"""What MST, AIM and Independent share: the run budget, receipts, sampling, save/load.

A marginal generator measures noisy marginals of the private table (every
measurement charged through the gate by the table itself), fits a graphical
model to them (`dpsynth.pgm.estimate`, post-processing) and samples rows from
the model.  The fitted model keeps the noisy answers, the model's potentials,
the public domain compression and the receipts — never a raw row.
"""

from __future__ import annotations

import io
import json
import math
import os
import secrets
import uuid
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from accountant.accountant import RDPAccountant
from accountant.events import NeighbouringRelation, event_from_json

from ..receipts import InvalidReceipt, ReceiptBook
from .budget import run_rho
from .compression import Compression
from .run import MeasurementRun

__all__ = ["MarginalGenerator", "NotFitted"]

FORMAT = "dpsynth.marginal/1"


class NotFitted(RuntimeError):
    """The model has not been fitted (or loaded)."""


def resolve_device(device: str | torch.device) -> torch.device:
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class MarginalGenerator:
    """Base class; subclasses implement `_fit(run) -> None` (setting the model state)."""

    generator_name = "marginal"

    def __init__(self, *, epsilon: float, device: str | torch.device = "auto", progress: bool = False) -> None:
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not (
                math.isfinite(epsilon) and epsilon > 0):
            raise ValueError(f"epsilon must be a finite number > 0, got {epsilon!r}")
        self.epsilon = float(epsilon)
        self.device = resolve_device(device)
        self.progress = bool(progress)
        # Fitted state.
        self.schema = None
        self.model = None
        self.compression: Compression | None = None
        self.measurements: list = []
        self.book = ReceiptBook()
        self.delta: float | None = None
        self.relation: NeighbouringRelation | None = None
        self.rho: float | None = None
        self.fit_log: dict[str, Any] = {}

    # -- configuration (saved with the model) ------------------------------------------------
    def config(self) -> dict[str, Any]:
        return {"epsilon": self.epsilon}

    @property
    def receipts(self):
        return list(self.book.receipts)

    # -- fitting ---------------------------------------------------------------------------
    @staticmethod
    def _gate_of(table: Any, gate: Any) -> Any:
        table_gate = getattr(table, "gate", None)
        if gate is None:
            gate = table_gate
        if gate is None:
            raise ValueError("fit needs a PrivateTable with a gate")
        if table_gate is not None and gate is not table_gate:
            raise ValueError("the gate passed to fit is not the table's gate")
        return gate

    def preflight(self, table: Any, gate: Any = None) -> dict[str, Any]:
        """Every check `fit` makes before its first measurement, on public facts only (the
        table's declared domain, the gate's ledger and policy); measures and charges nothing.

        Raises what `fit` would (BudgetExceeded, PolicyViolation, ValueError naming the
        parameter); returns the run's budget {"epsilon", "delta", "rho"}."""
        gate = self._gate_of(table, gate)
        rho = run_rho(gate, self.epsilon)
        self._check_run(dict(table.domain), rho, gate.relation)
        return {"epsilon": self.epsilon, "delta": gate.metadata.delta, "rho": rho}

    def _check_run(self, sizes: Mapping[str, int], rho: float, relation: NeighbouringRelation) -> None:
        """Subclasses refuse here, before anything is measured, a run their `_fit` could not finish."""

    def fit(self, table: Any, gate: Any = None, *, actor: str | None = None) -> "MarginalGenerator":
        """Measure the table through its gate and fit the model.  The whole run's ρ is
        checked against the gate first: a run that cannot fit is refused uncharged."""
        gate = self._gate_of(table, gate)
        rho = run_rho(gate, self.epsilon)
        self._check_run(dict(table.domain), rho, gate.relation)
        run = MeasurementRun(table, rho, self.generator_name, f"{self.generator_name}-{uuid.uuid4().hex}",
                             parameters=self.config())
        self.schema = table.schema
        self.delta = gate.metadata.delta
        self.relation = gate.relation
        self.rho = rho
        self.measurements = []
        self.model = None
        self._fit(run)
        self.book = ReceiptBook.of(run.receipts, gate.metadata.ledger_public_key)
        self._expected_events = list(run.expected_events)
        self.fit_log["rho_granted"] = rho
        self.fit_log["rho_spent"] = run.rho_spent
        return self

    def _fit(self, run: MeasurementRun) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- receipts --------------------------------------------------------------------------
    def epsilon_spent(self) -> float:
        """ε at the policy's δ of the events this model's receipts name (full RDP curve)."""
        self._require_fitted()
        acc = RDPAccountant(self.relation)
        for e in self.book.events():
            acc.compose(event_from_json(e))
        return acc.get_epsilon(self.delta)

    def verify(self, gate: Any = None) -> None:
        """Raise InvalidReceipt unless the receipts verify and pay for this model's fit."""
        self._require_fitted()
        self.book.verify(self._expected_events, gate)

    def _require_fitted(self) -> None:
        if self.model is None:
            raise NotFitted("fit (or load) the model first")

    # -- sampling (post-processing) --------------------------------------------------------
    def _where_codes(self, where: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """{column: original codes} for `where={column: value or list of values}`."""
        from dpsynth.schema import Schema

        if not isinstance(where, Mapping):
            raise TypeError("where must be a mapping {column: value or list of values}")
        out = {}
        for col, value in where.items():
            if col not in self.schema.names:
                raise KeyError(f"where: unknown column {col!r}")
            values = list(value) if isinstance(value, (list, tuple, set, np.ndarray)) else [value]
            if not values:
                raise ValueError(f"where: no value given for column {col!r}")
            sub = Schema([self.schema.column(col)])
            codes = sub.encode(pd.DataFrame({col: values}))[:, 0]
            out[col] = np.unique(codes.astype(np.int64))
        return out

    def sample_codes(self, n: int, where: Mapping[str, Any] | None = None, *,
                     rng: np.random.Generator, method: str = "systematic") -> np.ndarray:
        """n rows of original codes (columns in schema order)."""
        comp = self.compression
        attrs = list(self.model.domain.attrs)
        fixed = self._where_codes(where) if where else {}
        compressed_where = {c: np.unique(comp.recode(c)[codes]) for c, codes in fixed.items()}
        codes = self.model.sample(n, where=compressed_where or None, rng=rng, method=method)
        out = np.empty_like(codes)
        for j, attr in enumerate(attrs):
            out[:, j] = comp.expand(attr, codes[:, j], rng)
            if attr in fixed:
                # A merged (rare) code stands for several categories: keep only the asked ones.
                allowed = fixed[attr]
                bad = ~np.isin(out[:, j], allowed)
                if bad.any():
                    out[bad, j] = allowed[rng.integers(0, len(allowed), int(bad.sum()))]
        order = [attrs.index(a) for a in self.schema.names]
        return out[:, order]

    def sample(self, n: int, where: Mapping[str, Any] | None = None, *, seed: int | None = None,
               gate: Any = None, method: str = "systematic") -> pd.DataFrame:
        """n synthetic rows (decoded by the schema); `where` fixes columns exactly by
        conditioning the model.  Refuses a model whose receipts do not verify.

        ``method="systematic"`` (default) keeps each conditional cell's count within one
        of its expectation (lower sampling error in the released marginals);
        ``"iid"`` draws independent rows.  Both give each row the model's law."""
        self._require_fitted()
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"n must be an int >= 0, got {n!r}")
        self.verify(gate)
        rng = np.random.default_rng(secrets.randbits(128) if seed is None else seed)
        codes = self.sample_codes(int(n), where, rng=rng, method=method)
        return self.schema.decode(codes, rng)

    # -- persistence -----------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """One file: JSON metadata (config, schema, compression, receipts, noisy answers)
        and the model's potentials.  Nothing in it is a raw row."""
        self._require_fitted()
        meta = {
            "format": FORMAT,
            "generator": self.generator_name,
            "config": self.config(),
            "schema": self.schema.to_dict(),
            "compression": self.compression.to_dict(),
            "receipts": self.book.to_dict(),
            "expected_events": self._expected_events,
            "delta": self.delta,
            "relation": self.relation.value,
            "rho": self.rho,
            "fit_log": self.fit_log,
            "model": self.model.to_state_meta(),
        }
        arrays = {f"model/{k}": torch.as_tensor(np.asarray(v)) for k, v in self.model.to_state_arrays().items()}
        torch.save({"meta": json.dumps(meta, sort_keys=True, default=_json_default), "arrays": arrays},
                   os.fspath(path))

    @classmethod
    def load(cls, path: str | os.PathLike, *, device: str | torch.device = "auto") -> "MarginalGenerator":
        """Load a saved model and re-verify its receipts (signatures) before returning it."""
        from dpsynth.pgm import GraphicalModel
        from dpsynth.schema import Schema

        blob = torch.load(os.fspath(path), weights_only=True)
        meta = json.loads(blob["meta"])
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path}: not a dpsynth marginal model file ({meta.get('format')!r})")
        if meta["generator"] != cls.generator_name:
            raise ValueError(f"{path}: holds a {meta['generator']!r} model, not {cls.generator_name!r}")
        model = cls(**meta["config"], device=device)
        model.schema = Schema.from_dict(meta["schema"])
        model.compression = Compression.from_dict(meta["compression"])
        model.book = ReceiptBook.from_dict(meta["receipts"])
        model._expected_events = list(meta["expected_events"])
        model.delta = meta["delta"]
        model.relation = NeighbouringRelation(meta["relation"])
        model.rho = meta["rho"]
        model.fit_log = meta["fit_log"]
        arrays = {k.split("/", 1)[1]: v.numpy() for k, v in blob["arrays"].items() if k.startswith("model/")}
        model.model = GraphicalModel.from_state(meta["model"], arrays, device=model.device)
        model.verify()
        return model


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__}")

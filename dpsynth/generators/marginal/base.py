"""What MST, AIM and Independent share: the run budget, sealing, sampling, re-derivation.

A marginal generator measures noisy marginals of the private table (every
measurement charged through the gate, and its output committed, by the table
itself), fits a graphical model to them (`dpsynth.pgm.estimate`,
post-processing) and samples rows from the model.  The fitted model keeps every
noisy output it was given (in order, with the charge that paid for it), the
model's potentials, the public domain compression and the receipts — never a
raw row — and is sealed in the ledger.  Because fitting is post-processing of
the committed outputs, `rederive()` can fit the model again from them and
check it against the sealed one (`dpsynth model verify --rederive`).
"""

from __future__ import annotations

import math
import secrets
import uuid
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch

from accountant.accountant import RDPAccountant
from accountant.errors import InvalidReceipt
from accountant.events import NeighbouringRelation, event_from_json

from ..provenance import Provenance
from ..sealed import NotFitted, SealedModel
from .budget import run_rho
from .compression import Compression
from .run import MeasurementRun

__all__ = ["MarginalGenerator", "NotFitted"]

FORMAT = "dpsynth.marginal/2"
# Re-derivation compares log-potentials: estimation is deterministic on one machine, but a
# different BLAS or thread count may reassociate sums in the last bits.
_REDERIVE_TOLERANCE = 1e-6


def _bin_label(column: Any, lo: float, hi: float) -> str:
    if column.kind == "datetime":
        show = lambda x: pd.Timestamp(int(x * 1e9)).isoformat()  # noqa: E731
    else:
        show = lambda x: f"{x:g}"  # noqa: E731
    return f"[{show(lo)}, {show(hi)})"


def _bin_code(column: Any, value: Any) -> int:
    """The code of one bin of a binned column, named by `value`: a `pandas.Interval` equal to
    one of the column's bins.  A plain value is refused with the bin it lies in: the model
    knows only bins, so conditioning on the value would silently widen it to its bin."""
    from dpsynth.schema import Schema, SchemaError

    edges = np.asarray(column.edges)
    if isinstance(value, pd.Interval):
        try:
            lo, hi = (column._public(x).value / 1e9 if column.kind == "datetime" else float(x)
                      for x in (value.left, value.right))
        except (TypeError, ValueError, SchemaError):
            raise ValueError(f"where: {value!r} is not a bin of column {column.name!r}") from None
        for i in range(len(edges) - 1):
            if math.isclose(lo, edges[i], rel_tol=0, abs_tol=1e-9 * max(1.0, abs(edges[i]))) and math.isclose(
                    hi, edges[i + 1], rel_tol=0, abs_tol=1e-9 * max(1.0, abs(edges[i + 1]))):
                return i
        bins = ", ".join(_bin_label(column, edges[i], edges[i + 1]) for i in range(min(len(edges) - 1, 6)))
        raise ValueError(f"where: {value!r} is not a bin of column {column.name!r} (its bins: {bins}"
                         f"{', ...' if len(edges) > 7 else ''})")
    sub = Schema([column])
    code = int(sub.encode(pd.DataFrame({column.name: [value]}))[0, 0])
    if column.nullable and code == column.missing_code:
        return code  # a missing value is one code: exact
    if column.other_code is not None and code == column.other_code:
        raise ValueError(f"where: {value!r} is outside the bins of column {column.name!r}")
    lo, hi = edges[code], edges[code + 1]
    label = _bin_label(column, lo, hi)
    left, right = (pd.Timestamp(int(x * 1e9)) if column.kind == "datetime" else float(x) for x in (lo, hi))
    raise ValueError(
        f"where: column {column.name!r} is binned and the model knows only its bins: {value!r} lies in the bin "
        f"{label}, and rows conditioned on it would hold any value of that bin, not {value!r}.  Condition on the "
        f"bin itself, where={{{column.name!r}: pandas.Interval({left!r}, {right!r}, closed='left')}}, or declare "
        "the column with one code per value (an integer column: bins = \"values\")")


def resolve_device(device: str | torch.device) -> torch.device:
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class MarginalGenerator(SealedModel):
    """Base class; subclasses implement `_fit(run) -> None` (setting the model state)."""

    generator_name = "marginal"
    FORMAT = FORMAT

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
        self.releases: list[tuple[int, str, Any]] = []
        self.provenance = Provenance()
        self._expected: list[str] = []
        self.delta: float | None = None
        self.relation: NeighbouringRelation | None = None
        self.rho: float | None = None
        self.fit_log: dict[str, Any] = {}
        # Wall time of the last fit, for the caller's own use: never saved (a shareable model
        # file keeps no sub-minute timing; proofs/filter.md).
        self.fit_seconds: float | None = None

    # -- configuration (saved with the model) ------------------------------------------------
    def config(self) -> dict[str, Any]:
        return {"epsilon": self.epsilon}

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
        """Measure the table through its gate, fit the model and seal it in the ledger.  The
        whole run's ρ is checked against the gate first: a run that cannot fit is refused
        uncharged."""
        gate = self._gate_of(table, gate)
        rho = run_rho(gate, self.epsilon)
        self._check_run(dict(table.domain), rho, gate.relation)
        run_id = f"{self.generator_name}-{uuid.uuid4().hex}"
        run = MeasurementRun(table, rho, self.generator_name, run_id, parameters=self.config())
        self.schema = table.schema
        self.delta = gate.metadata.delta
        self.relation = gate.relation
        self.rho = rho
        self.measurements = []
        self.model = None
        self.fit_log = {}
        self._fit(run)
        self.releases = list(run.releases)
        self._expected = list(run.expected_events)
        self.fit_log["rho_granted"] = rho
        self.fit_log["rho_spent"] = run.rho_spent
        self._seal(gate, table, run_id, actor)
        return self

    def _fit(self, run: MeasurementRun) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _say(self, message: str) -> None:
        """One progress line on stderr when `progress` is on (public facts only: steps, rounds,
        the budget share used; never a measured value)."""
        if self.progress:
            import sys

            print(f"[{self.generator_name}] {message}", file=sys.stderr, flush=True)

    # -- receipts --------------------------------------------------------------------------
    def epsilon_spent(self) -> float:
        """ε at the policy's δ of the events this model's receipts name (full RDP curve)."""
        self._require_fitted()
        acc = RDPAccountant(self.relation)
        for e in self.provenance.events():
            acc.compose(event_from_json(e))
        return acc.get_epsilon(self.delta)

    def _expected_events(self) -> list[str]:
        return list(self._expected)

    def _release_digests(self) -> dict[int, str]:
        from dpsynth.table.commitments import release_digest

        return {seq: release_digest(output) for seq, _, output in self.releases}

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
            column = self.schema.column(col)
            if not column.is_discrete and not column.one_code_per_value:
                out[col] = np.unique(np.array([_bin_code(column, v) for v in values], dtype=np.int64))
                continue
            sub = Schema([column])
            codes = sub.encode(pd.DataFrame({col: values}))[:, 0]
            out[col] = np.unique(codes.astype(np.int64))
        return out

    def sample_codes(self, n: int, where: Mapping[str, Any] | None = None, *,
                     rng: np.random.Generator, method: str = "systematic") -> np.ndarray:
        """n rows of original codes (columns in schema order)."""
        return self._sample_fixed(n, self._where_codes(where) if where else {}, rng=rng, method=method)

    def _sample_fixed(self, n: int, fixed: Mapping[str, np.ndarray], *, rng: np.random.Generator,
                      method: str) -> np.ndarray:
        """n rows of original codes, each column of `fixed` held to its codes by conditioning."""
        comp = self.compression
        attrs = list(self.model.domain.attrs)
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

    def _proportion_codes(self, n: int, proportions: Any, where: Mapping[str, Any] | None, *,
                          rng: np.random.Generator, method: str) -> np.ndarray:
        """n rows of original codes whose `proportions` column holds the requested shares
        exactly: one block per value, each drawn from the model conditioned on that value (and
        on `where`), then shuffled together (dpsynth.generators.proportions)."""
        from ..proportions import plan_shares

        fixed = self._where_codes(where) if where else {}
        values, codes_of = {}, {}

        def values_of(col: str) -> list:
            if col not in self.schema.names:
                raise KeyError(f"proportions: unknown column {col!r}")
            column = self.schema.column(col)
            if not column.is_discrete:
                raise ValueError(f"proportions: column {col!r} is {column.kind}; rebalance a categorical or "
                                 "boolean column")
            if col in fixed:
                raise ValueError(f"proportions: column {col!r} is also fixed by where")
            vals = list(column.categories) + ([None] if column.nullable else [])
            codes = list(range(len(column.categories))) + ([column.missing_code] if column.nullable else [])
            values[col], codes_of[col] = vals, codes
            return vals, int(column.other_code is not None)

        col, blocks = plan_shares(n, proportions, values_of)
        column = self.schema.column(col)
        all_codes = np.arange(column.size, dtype=np.int64)
        parts = []
        for block in blocks:
            if len(block.indices) == 1:
                allowed = np.array([codes_of[col][block.indices[0]]], dtype=np.int64)
            else:  # the values not named (and an "other" code): the model's own proportions among them
                named = {codes_of[col][i] for i in range(len(values[col])) if i not in set(block.indices)}
                allowed = all_codes[~np.isin(all_codes, list(named))]
            parts.append(self._sample_fixed(block.rows, {**fixed, col: allowed}, rng=rng, method=method))
        out = np.concatenate(parts) if parts else np.zeros((0, len(self.schema.names)), np.int64)
        return out[rng.permutation(len(out))]

    def sample(self, n: int, where: Mapping[str, Any] | None = None, *, seed: int | None = None,
               gate: Any = None, method: str = "systematic",
               proportions: Mapping[str, Mapping[Any, float]] | None = None) -> pd.DataFrame:
        """n synthetic rows (decoded by the schema); `where` fixes columns exactly by
        conditioning the model.  Refuses a model whose receipts do not verify.

        ``proportions={column: {value: share}}`` rebalances one categorical column: exactly
        round(share·n) rows (largest remainder) hold each named value, drawn from the model
        conditioned on it; the values not named share the rest in the model's proportions.
        Post-processing: nothing is charged (docs/fairness.md says what it does not fix).

        ``method="systematic"`` (default) keeps each conditional cell's count within one
        of its expectation (lower sampling error in the released marginals);
        ``"iid"`` draws independent rows.  Both give each row the model's law."""
        self._require_fitted()
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"n must be an int >= 0, got {n!r}")
        self.verify(gate)
        rng = np.random.default_rng(secrets.randbits(128) if seed is None else seed)
        if proportions is None:
            codes = self.sample_codes(int(n), where, rng=rng, method=method)
        else:
            codes = self._proportion_codes(int(n), proportions, where, rng=rng, method=method)
        return self.schema.decode(codes, rng)

    def sample_to_parquet(self, path: Any, n: int, where: Mapping[str, Any] | None = None, *,
                          seed: int | None = None, gate: Any = None, method: str = "systematic",
                          chunk_rows: int = 1_000_000) -> Any:
        """Write n synthetic rows to a Parquet file, `chunk_rows` at a time (memory bounded by a
        chunk, whatever n is); returns the path.  The model is verified once, first; the file
        appears only when complete (written beside it, then moved into place).  Each chunk is
        drawn as `sample` draws (with ``"systematic"``, per chunk), so every row has the
        model's law."""
        import os
        import tempfile
        from pathlib import Path

        import pyarrow as pa
        import pyarrow.parquet as pq

        self._require_fitted()
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"n must be an int >= 0, got {n!r}")
        if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 1:
            raise ValueError(f"chunk_rows must be an int >= 1, got {chunk_rows!r}")
        self.verify(gate)
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(secrets.randbits(128) if seed is None else seed)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        os.close(fd)
        writer = None
        try:
            left = int(n)
            while True:
                m = min(left, int(chunk_rows))
                codes = self.sample_codes(m, where, rng=rng, method=method)
                table = pa.Table.from_pandas(self.schema.decode(codes, rng), preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, self._arrow_schema(table.schema))
                writer.write_table(table.cast(writer.schema))
                left -= m
                if left <= 0:
                    break
            writer.close()
            writer = None
            os.replace(tmp, target)
        except BaseException:
            if writer is not None:
                writer.close()
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return target

    def _arrow_schema(self, first: Any) -> Any:
        """The file's Arrow schema: the first chunk's, with a column that chunk held only
        missing values in typed from the schema (a later chunk may hold values)."""
        import pyarrow as pa

        fields = []
        for f in first:
            if pa.types.is_null(f.type):
                col = self.schema.column(f.name)
                kind = ("timestamp" if col.kind == "datetime" else "double" if col.kind in ("numeric", "integer")
                        else "bool" if col.kind == "boolean" else "string")
                f = pa.field(f.name, {"timestamp": pa.timestamp("ns"), "double": pa.float64(), "bool": pa.bool_(),
                                      "string": pa.string()}[kind])
            fields.append(f)
        return pa.schema(fields)

    # -- state (what the seal covers, what a file holds) -------------------------------------
    def _state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        self._require_fitted()
        releases, arrays = [], {}
        for i, (seq, kind, output) in enumerate(self.releases):
            if kind == "marginals":
                for j, m in enumerate(output):
                    arrays[f"release/{i}/{j}"] = np.asarray(m.values, dtype=np.int64)
                releases.append({"sequence": seq, "kind": kind, "cliques": [list(m.clique) for m in output],
                                 "sigmas": [float(m.sigma) for m in output]})
            else:
                releases.append({"sequence": seq, "kind": kind, "index": int(output)})
        arrays.update({f"model/{k}": np.asarray(v) for k, v in self.model.to_state_arrays().items()})
        meta = {
            "config": self.config(),
            "schema": self.schema.to_dict(),
            "compression": self.compression.to_dict(),
            "expected_events": list(self._expected),
            "delta": self.delta,
            "relation": self.relation.value,
            "rho": self.rho,
            "fit_log": self.fit_log,
            "model": self.model.to_state_meta(),
            "releases": releases,
        }
        return meta, arrays

    @classmethod
    def _from_state(cls, meta: dict[str, Any], arrays: dict[str, Any], device: Any) -> "MarginalGenerator":
        from dpsynth.pgm import GraphicalModel
        from dpsynth.schema import Schema
        from dpsynth.table.measurement import NoisyMarginal

        model = cls(**meta["config"], device=device)
        model.schema = Schema.from_dict(meta["schema"])
        model.compression = Compression.from_dict(meta["compression"])
        model._expected = [str(e) for e in meta["expected_events"]]
        model.delta = float(meta["delta"])
        model.relation = NeighbouringRelation(meta["relation"])
        model.rho = float(meta["rho"])
        model.fit_log = dict(meta["fit_log"])
        releases = []
        for i, r in enumerate(meta["releases"]):
            if r["kind"] == "marginals":
                out = [NoisyMarginal(tuple(c), np.asarray(arrays[f"release/{i}/{j}"], dtype=np.int64), float(s))
                       for j, (c, s) in enumerate(zip(r["cliques"], r["sigmas"]))]
            elif r["kind"] == "select":
                out = int(r["index"])
            else:
                raise ValueError(f"unknown release kind {r['kind']!r}")
            releases.append((int(r["sequence"]), r["kind"], out))
        model.releases = releases
        model_arrays = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("model/")}
        model.model = GraphicalModel.from_state(meta["model"], model_arrays, device=model.device)
        return model

    # -- re-derivation (post-processing of the committed outputs) ------------------------------
    def rederive(self) -> str:
        """Fit the model again from its committed noisy outputs (their digests checked against
        the ledger's release entries first) and compare with the sealed model.  Raises
        InvalidReceipt on a mismatch; returns a one-line report."""
        self.verify()
        fresh = type(self)(**self.config(), device="cpu")
        outputs = _CommittedOutputs(self)
        run = MeasurementRun(outputs, self.rho, self.generator_name, "rederive", parameters=self.config())
        fresh.schema, fresh.relation, fresh.delta, fresh.rho = self.schema, self.relation, self.delta, self.rho
        fresh._fit(run)
        if outputs.served != len(self.releases):
            raise InvalidReceipt(f"re-deriving used {outputs.served} of the model's {len(self.releases)} committed "
                                 "outputs: the model was not fitted from them")
        mine = {k: np.asarray(v, dtype=np.float64) for k, v in self.model.to_state_arrays().items()}
        theirs = {k: np.asarray(v, dtype=np.float64) for k, v in fresh.model.to_state_arrays().items()}
        if set(mine) != set(theirs) or any(mine[k].shape != theirs[k].shape for k in mine):
            raise InvalidReceipt("re-deriving from the committed measurements gives a model of another shape")
        worst = max((float(np.max(np.abs(mine[k] - theirs[k]), initial=0.0)) for k in mine), default=0.0)
        if not worst <= _REDERIVE_TOLERANCE:
            raise InvalidReceipt(f"re-deriving from the committed measurements gives another model (largest "
                                 f"difference {worst:.3g}): the sealed model is not the fit of its measurements")
        return (f"re-derived from the {len(self.releases)} committed noisy outputs: the same model (largest "
                f"difference {worst:.3g})")

class _CommittedOutputs:
    """A stand-in for the private table that serves a model's committed noisy outputs, in
    order, to a fresh fit (post-processing only: it holds no rows)."""

    def __init__(self, model: MarginalGenerator) -> None:
        self.schema = model.schema
        self.domain = model.schema.domain()
        self.gate = type("PublicGate", (), {"relation": model.relation})()
        self._model = model
        self._releases = list(model.releases)
        prov = model.provenance
        self._charges = {r.sequence: r for r in prov.charges}
        self._release_receipts = prov.releases()
        self.receipts: list[Any] = []
        self.served = 0

    def _next(self, kind: str, events: str | None = None) -> Any:
        if self.served >= len(self._releases):
            raise InvalidReceipt("the fit asks for more measurements than the model committed")
        seq, k, output = self._releases[self.served]
        if k != kind:
            raise InvalidReceipt(f"the fit asks for a {kind} measurement where the model committed a {k}")
        self.served += 1
        self.receipts.extend([self._charges[seq], self._release_receipts[seq]])
        return output

    def measure_marginals(self, cliques, sigmas, **_: Any) -> list:
        out = self._next("marginals")
        if [tuple(m.clique) for m in out] != [tuple(c) for c in cliques] or \
                [float(m.sigma) for m in out] != [float(x) for x in sigmas]:
            raise InvalidReceipt("the fit asks for other marginals than the model committed")
        return out

    def select_marginal(self, candidates, estimates, epsilon, **_: Any) -> int:
        index = self._next("select")
        if not 0 <= index < len(candidates):
            raise InvalidReceipt("a committed selection names no candidate of the fit")
        return index

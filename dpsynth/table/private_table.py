"""The private table: the only holder of raw rows; its methods are measurements.

Every measurement follows the same order (`PrivateTable._measure`):

1. validate the public arguments (bad input spends nothing);
2. charge the gate — the signed ledger entry exists before anything is computed;
3. draw the noise (from the table's random source) — before the data is read;
4. open the rows (only inside the measurement), compute the exact answer and
   check it against the sensitivity the charge assumed;
5. release exact + noise (or the exponential mechanism's choice), after the gate
   has written a `release` entry committing to the output's SHA-256 — a charge
   pays for one release, once.

Multi-step mechanisms (DP-SGD, PATE) run as *sessions* inside the table: one
charge for the whole plan, an `open` entry, per-step outputs folded into one
running digest, and a closing `release` entry.  No method returns rows, codes,
the number of rows or anything computed from them outside a charged mechanism;
no method takes caller code that sees rows, except `custom_measurement`, which
the signed policy must allow and whose entry records the code's hash.  `repr`
shows only the public schema; pickling and copying are refused.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from accountant.events import DiscreteGaussianEvent, ExponentialMechanismEvent, NeighbouringRelation
from accountant.fingerprint import fingerprint_table

from ..schema import Schema
from .commitments import RunningDigest, release_digest
from .custom import CustomMechanismMixin
from .duckdb_source import DuckDBSource, EngineRows, NeedsTableInMemory
from .engine_source import EngineSource
from .dpsgd import DPSGDMixin
from .learning import SchemaLearningMixin
from .measurement import Measurement, NoisyMarginal
from .params import positive, probability
from .pate import PateMixin
from .queries import MAX_MARGINAL_CELLS, marginal_counts, marginal_counts_many, selection_scores
from .rows import Rows
from .sensitivity import SensitivityViolation, check_counts_of_records
from .sources import resolve_source

__all__ = ["PrivateTable"]


def _noise_api():
    # Imported lazily: the samplers live in dpsynth.noise (exact, CSPRNG-fed).
    from dpsynth.noise import discrete_gaussian, exponential_mechanism, randomness

    return randomness, discrete_gaussian.sample_discrete_gaussian, exponential_mechanism.sample_exponential_mechanism


class PrivateTable(DPSGDMixin, SchemaLearningMixin, PateMixin, CustomMechanismMixin):
    """A private table bound to a gate.

    Args:
        frame: the raw rows: a pandas DataFrame whose columns are exactly the schema's, or a
            `DuckDBSource` (CSV or Parquet files read out of core: the rows stay in the engine,
            which returns exact counts only; the schema must be complete, and measurements that
            read rows one by one — DP-SGD, PATE, schema learning, custom code — are refused
            before any charge).  See docs/scale.md.
        schema: the public schema.  It may be incomplete (categories or bins still to be
            learned through `learn_schema`); measurements on codes need it complete.
        gate: the `accountant.gate.Gate` every measurement is charged to.
        dataset_key: the data holder's secret key.  The table's keyed fingerprint must be
            the one the gate's policy governs; required unless the ledger is in insecure
            development mode.
        random_source: where noise comes from: None (a fresh `SecureRandomSource`), a
            `SecureRandomSource`, or — only where the policy allows seeded test noise — a
            `SeededRandomSource`.  Nothing else.
        actor: recorded in each ledger entry (default: the OS user).

    The number of rows must not exceed the policy's public `dataset.max_records`.
    """

    def __init__(self, frame: pd.DataFrame | DuckDBSource, schema: Schema, gate: Any, *,
                 dataset_key: bytes | None = None, random_source: Any = None, actor: str | None = None) -> None:
        frame = self._bind(frame, schema, gate, dataset_key=dataset_key, random_source=random_source, actor=actor)
        self._hold(frame)

    @classmethod
    def split(cls, frame: pd.DataFrame, schema: Schema, gate: Any, *, holdout: float, dataset_key: bytes | None = None,
              seed: int | None = None, random_source: Any = None, actor: str | None = None,
              ) -> tuple["PrivateTable", pd.DataFrame, pd.DataFrame]:
        """(a table of the rows kept for fitting, those rows, the held-out rows).

        The fingerprint is checked on the whole governed table; the split is a uniform random
        permutation independent of the data (from `seed` for tests, else the OS CSPRNG), so a
        fit on the kept rows is a fit on a data-independent subset of the governed dataset.
        Both parts go back to the caller — the data holder, who passed the whole frame in —
        for their own evaluation; nothing of them is released."""
        import secrets

        share = probability(holdout, "holdout")
        if isinstance(frame, EngineSource):
            raise NeedsTableInMemory("a holdout split needs the table in memory (a pandas DataFrame), not an "
                                     f"engine source ({type(frame).__name__})")
        table = cls.__new__(cls)
        frame = table._bind(frame, schema, gate, dataset_key=dataset_key, random_source=random_source, actor=actor)
        n = len(frame)
        n_hold = int(round(share * n))
        if n_hold < 1 or n - n_hold < 1:
            raise ValueError("holdout leaves no rows for the fit or none for the holdout")
        rng = np.random.default_rng(secrets.randbits(128) if seed is None else seed)
        order = rng.permutation(n)
        keep = frame.iloc[np.sort(order[n_hold:])].reset_index(drop=True)
        table._hold(keep)
        return table, keep.copy(), frame.iloc[np.sort(order[:n_hold])].reset_index(drop=True)

    def _bind(self, frame: pd.DataFrame | DuckDBSource, schema: Schema, gate: Any, *, dataset_key: bytes | None,
              random_source: Any, actor: str | None) -> pd.DataFrame | EngineRows:
        """Every check before the table holds its rows; returns the validated frame (or, for a
        DuckDB source, the engine's rows: fingerprinted, then checked in the engine)."""
        if not isinstance(schema, Schema):
            raise TypeError(f"schema must be a dpsynth.schema.Schema, got {type(schema).__name__}")
        for name in ("charge", "release", "relation", "policy", "check_dataset"):
            if not hasattr(gate, name):
                raise TypeError(f"gate must be an accountant.gate.Gate (missing {name})")
        source, label = resolve_source(random_source, gate.policy)
        if actor is not None and (not isinstance(actor, str) or not actor.strip()):
            raise ValueError("actor must be a non-empty string or None")
        if dataset_key is None:
            if not getattr(gate, "insecure", False):
                raise ValueError("dataset_key is required: the table must be the dataset the policy governs "
                                 "(only a ledger in insecure development mode may omit it)")
        elif not isinstance(dataset_key, (bytes, bytearray)):
            raise TypeError("dataset_key must be bytes")
        if isinstance(frame, EngineSource):
            if not schema.is_complete:
                raise NeedsTableInMemory(f"an engine source ({type(frame).__name__}) needs a complete schema (declare the categories/bins of "
                                         f"{list(schema.incomplete())}): learning a schema needs the table in memory")
            # Fingerprinted (files: their bytes; a query: its rows, in the engine) and checked
            # before the engine shows anything of a value.
            frame = frame.bind(schema, None if dataset_key is None else bytes(dataset_key), gate.check_dataset)
            n_records = frame._n
        else:
            frame = schema.validate(frame)
            # How the table writes its values (0/1 or true/false, plain dates), where the schema
            # leaves it open: one way per column or the table is refused (dpsynth.schema.represent).
            # A DuckDB source is not read for this: its output takes the schema's declared forms.
            schema = schema.resolve(frame)
            if dataset_key is not None:
                gate.check_dataset(fingerprint_table(frame, bytes(dataset_key)))
            n_records = len(frame)
        if n_records > gate.policy.max_records:
            raise ValueError("the table holds more records than the policy's public bound dataset.max_records "
                             "(every noise scale assumes that bound); the officer must raise it")
        self._schema = schema
        self._gate = gate
        self._source = source
        self._noise_label = label
        self._actor = actor
        self._receipts: list[Any] = []
        return frame

    def _hold(self, frame: pd.DataFrame | EngineRows) -> None:
        if isinstance(frame, EngineRows):
            self.__rows = frame
            return
        self.__rows = Rows(frame, self._schema.encode(frame) if self._schema.is_complete else None)

    @property
    def in_memory(self) -> bool:
        """True when the rows are a frame in memory; False for a DuckDB source (public: how the
        table was built, not what it holds)."""
        return not isinstance(self.__rows, EngineRows)

    def _exact_marginals(self, rows: Any, idx: Sequence[Sequence[int]], shapes: Sequence[tuple[int, ...]],
                         maps: Mapping[str, np.ndarray]) -> tuple[list[np.ndarray], int]:
        """(exact counts of each clique, dense over its (recoded) domain; the number of records)."""
        if isinstance(rows, EngineRows):
            base = rows.marginals(idx)
            names = self._schema.names
            return [self._recode_table(t, [names[j] for j in cols], maps) for t, cols in zip(base, idx)], \
                rows.n_records
        if not maps:
            # Counts of the held codes are kept between measurements (Rows.marginals).
            return rows.marginals(idx, shapes, marginal_counts), rows.n_records
        codes = self._recoded(rows.codes, maps)
        return marginal_counts_many(codes, idx, shapes, marginal_counts), codes.shape[0]

    @staticmethod
    def _recode_table(table: np.ndarray, names: Sequence[str], maps: Mapping[str, np.ndarray]) -> np.ndarray:
        """Counts on original codes summed onto the public recoded codes (exact, int64)."""
        for axis, name in enumerate(names):
            if name in maps:
                m = maps[name]
                onehot = np.zeros((m.shape[0], int(m.max()) + 1), dtype=np.int64)
                onehot[np.arange(m.shape[0]), m] = 1
                table = np.moveaxis(np.tensordot(table, onehot, axes=([axis], [0])), -1, axis)
        return table

    def _view_as(self, cls: type, *, actor: str | None) -> "PrivateTable":
        """A table of class `cls` (a subclass) over the same held rows, in `actor`'s name, with no
        receipts yet: a team service binds and validates a dataset once, then serves each request
        through a view of it (dpsynth.serve.table).  The rows are not copied and stay private."""
        if not (isinstance(cls, type) and issubclass(cls, PrivateTable)):
            raise TypeError("a view of a PrivateTable is a PrivateTable")
        view = object.__new__(cls)
        view.__dict__.update(self.__dict__)
        view._actor = actor
        view._receipts = []
        return view

    # -- public facts -------------------------------------------------------------------------
    @property
    def schema(self) -> Schema:
        return self._schema

    @property
    def gate(self) -> Any:
        return self._gate

    @property
    def domain(self) -> dict[str, int]:
        """Number of codes per column (public: from the schema)."""
        return self._schema.domain()

    @property
    def noise_source(self) -> str:
        """"seeded-test" for a seeded (test) random source, else "secure" (from the source's type)."""
        return self._noise_label

    @property
    def relation(self) -> NeighbouringRelation:
        return self._gate.relation

    @property
    def receipts(self) -> tuple[Any, ...]:
        """Receipts of every entry this table wrote (charges, opens, releases), in order."""
        return tuple(self._receipts)

    @property
    def charges(self) -> tuple[Any, ...]:
        """Receipts of the charges this table made (what was spent), in order."""
        return tuple(r for r in self._receipts if r.kind == "charge")

    def receipts_for(self, run_id: str) -> tuple[Any, ...]:
        return tuple(r for r in self._receipts if r.run_id == run_id)

    def __repr__(self) -> str:
        return f"PrivateTable(columns={list(self._schema.names)}, rows=<private>)"

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError("a PrivateTable cannot be pickled or copied: it is the only holder of the rows")

    def __getstate__(self) -> Any:
        raise TypeError("a PrivateTable cannot be pickled or copied: it is the only holder of the rows")

    # -- the measurement primitive --------------------------------------------------------------
    def _l2_unit(self) -> float:
        """L2 sensitivity of one count vector in which a record occupies one cell."""
        return math.sqrt(2.0) if self.relation is NeighbouringRelation.REPLACE_ONE else 1.0

    def _charge(self, spec: Measurement, *, purpose: str, generator: str | None, run_id: str | None,
                parameters: Mapping[str, Any] | None, code_sha256: str | None = None) -> Any:
        # The table's own description of the measurement comes last: a caller's `parameters`
        # may add context, never overwrite what was measured (σ, cliques, the code's hash) in
        # the entry an auditor reads.
        params = {**dict(parameters or {}), "measurement": spec.kind, **spec.query}
        rows = self.__rows
        if isinstance(rows, EngineRows):
            # Refused before the charge: what the engine cannot answer, and files changed since binding.
            if spec.kind not in ("marginals", "select", "count"):
                raise NeedsTableInMemory(f"the {spec.kind!r} measurement reads the rows one by one: it needs the "
                                         "table in memory (a pandas DataFrame), not a DuckDB source; nothing was "
                                         "charged")
            rows.check_unchanged()
        receipt = self._gate.charge(list(spec.events), purpose=purpose, generator=generator, parameters=params,
                                    actor=self._actor, noise_source=self.noise_source, run_id=run_id,
                                    code_sha256=code_sha256, **self._charge_options())
        self._receipts.append(receipt)
        return receipt

    def _charge_options(self) -> dict[str, Any]:
        """More keyword arguments for the gate's charge: none here; a team service's table adds
        the person's cap and the request's idempotency key (dpsynth.serve.table)."""
        return {}

    def _measure(self, spec: Measurement, *, purpose: str, generator: str | None, run_id: str | None,
                 parameters: Mapping[str, Any] | None, noise: Callable[[], Any] | None,
                 exact: Callable[[Rows], Any], release: Callable[[Any, Any], Any]) -> Any:
        """Charge, draw noise, read, check, commit, release — in that order.  The only path to the rows."""
        receipt = self._charge(spec, purpose=purpose, generator=generator, run_id=run_id, parameters=parameters)
        output = self._answer(spec, receipt, noise=noise, exact=exact, release=release)
        self._commit_release(receipt, release_digest(output), {"measurement": spec.kind})
        return output

    def _answer(self, spec: Measurement, receipt: Any, *, noise: Callable[[], Any] | None,
                exact: Callable[[Rows], Any], release: Callable[[Any, Any], Any]) -> Any:
        """One output of a charged measurement: noise first, then the rows (exact answers check
        their own sensitivity bound), then the release function.  Nothing is committed here."""
        drawn = noise() if noise is not None else None
        with self._open_rows(receipt) as rows:
            answer = exact(rows)
        output = release(answer, drawn)
        self._observe(spec, receipt, answer, drawn, output)
        return output

    def _commit_release(self, receipt: Any, digest: str, parameters: Mapping[str, Any]) -> Any:
        """The gate's release entry: the output leaves only after it is written (once per charge)."""
        rel = self._gate.release(receipt, digest, actor=self._actor, parameters=dict(parameters))
        self._receipts.append(rel)
        return rel

    def _open_session(self, receipt: Any, parameters: Mapping[str, Any]) -> Any:
        rel = self._gate.open_release(receipt, actor=self._actor, parameters=dict(parameters))
        self._receipts.append(rel)
        return rel

    def _step(self, spec: Measurement, receipt: Any, digest: RunningDigest, *, noise: Callable[[], Any] | None,
              exact: Callable[[Rows], Any], release: Callable[[Any, Any], Any]) -> Any:
        """One output of an open session: the ledger must still hold the session's charge
        (a ledger replaced or rolled back mid-run stops the session before release)."""
        self._gate.confirm(receipt)
        output = self._answer(spec, receipt, noise=noise, exact=exact, release=release)
        digest.add(output)
        return output

    def _open_rows(self, receipt: Any) -> Any:
        """The rows, readable inside this context only (see dpsynth.table.rows)."""
        return self.__rows.reading(receipt)

    def _observe(self, spec: Measurement, receipt: Any, answer: Any, noise: Any, output: Any) -> None:
        """Hook for the test recorder (dpsynth.testing); does nothing here."""

    def _adopt_schema(self, schema: Schema) -> None:
        """Take a schema whose new facts were learned through the gate (public post-processing)."""
        if schema.names != self._schema.names or any(
                a.kind != b.kind for a, b in zip(schema.columns, self._schema.columns)):
            raise ValueError("a learned schema must keep the table's columns and kinds")
        rows = self.__rows
        if isinstance(rows, EngineRows):
            raise NeedsTableInMemory("learning a schema needs the table in memory, not a DuckDB source")
        # Encoding reads the rows but releases nothing: the codes stay inside the table.
        rows.recode(schema.encode(rows._frame) if schema.is_complete else None)
        self._schema = schema

    # -- validation helpers ---------------------------------------------------------------------
    def _clique(self, clique: Any, where: str) -> tuple[str, ...]:
        if isinstance(clique, str) or not isinstance(clique, (tuple, list)):
            raise TypeError(f"{where} must be a tuple of column names")
        names = tuple(clique)
        for n in names:
            self._schema.column(n)
        if len(set(names)) != len(names):
            raise ValueError(f"{where} names a column twice")
        return names

    def _shape(self, clique: tuple[str, ...], maps: Mapping[str, np.ndarray] | None = None) -> tuple[int, ...]:
        dom = self.domain
        maps = maps or {}
        return tuple(int(maps[n].max()) + 1 if n in maps else dom[n] for n in clique)

    def _recode_maps(self, recode: Mapping[str, Any] | None) -> dict[str, np.ndarray]:
        """Validate public code maps: one int per original code, onto 0..m-1."""
        if not recode:
            return {}
        if not isinstance(recode, Mapping):
            raise TypeError("recode must be a mapping {column: array of new codes}")
        dom = self.domain
        maps = {}
        for name, m in recode.items():
            self._schema.column(name)
            arr = np.asarray(m)
            if arr.ndim != 1 or arr.shape[0] != dom[name] or not np.issubdtype(arr.dtype, np.integer):
                raise ValueError(f"recode[{name!r}] must be {dom[name]} integer codes, one per code of the column")
            if arr.size and (arr.min() < 0 or np.unique(arr).size != int(arr.max()) + 1):
                raise ValueError(f"recode[{name!r}] must map onto 0..m-1 with every new code used")
            maps[name] = arr.astype(np.int64)
        return maps

    def _recoded(self, codes: np.ndarray, maps: Mapping[str, np.ndarray]) -> np.ndarray:
        if not maps:
            return codes
        out = codes.copy()
        names = self._schema.names
        for name, m in maps.items():
            j = names.index(name)
            out[:, j] = m[codes[:, j]]
        return out

    def _indices(self, clique: tuple[str, ...]) -> list[int]:
        names = self._schema.names
        return [names.index(n) for n in clique]

    # -- marginals ------------------------------------------------------------------------------
    def measure_marginals(self, cliques: Sequence[tuple[str, ...]], sigma: float | Sequence[float], *,
                          purpose: str, generator: str, run_id: str,
                          parameters: dict | None = None,
                          recode: Mapping[str, np.ndarray] | None = None) -> list[NoisyMarginal]:
        """Noisy counts of each clique's marginal, discrete Gaussian noise of scale σ_i.

        One gate charge for the batch: the composition of DiscreteGaussianEvent(σ_i, Δ) with
        Δ = 1 under add/remove-one and √2 under replace-one (proofs/marginals.md).
        `recode[column]` is a public map of the column's codes to new codes (MST's domain
        compression): the marginal is counted on the recoded column; a record still
        occupies one cell, so Δ is unchanged.
        """
        if isinstance(cliques, (str, bytes)) or not isinstance(cliques, Sequence) or len(cliques) == 0:
            raise ValueError("cliques must be a non-empty list of column-name tuples")
        cl = [self._clique(c, f"cliques[{i}]") for i, c in enumerate(cliques)]
        if isinstance(sigma, Sequence) and not isinstance(sigma, str):
            if len(sigma) != len(cl):
                raise ValueError(f"sigma has {len(sigma)} entries for {len(cl)} cliques")
            sigmas = [positive(s, f"sigma[{i}]") for i, s in enumerate(sigma)]
        else:
            sigmas = [positive(sigma, "sigma")] * len(cl)
        maps = self._recode_maps(recode)
        shapes = [self._shape(c, maps) for c in cl]
        for c, s in zip(cl, shapes):
            if int(np.prod(s, dtype=np.int64)) > MAX_MARGINAL_CELLS:
                raise ValueError(f"the marginal on {list(c)} has more than {MAX_MARGINAL_CELLS} cells")
        delta_2 = self._l2_unit()
        spec = Measurement(
            kind="marginals",
            query={"cliques": [list(c) for c in cl], "sigmas": sigmas,
                   **({"recode": {k: v.tolist() for k, v in maps.items()}} if maps else {})},
            events=tuple(DiscreteGaussianEvent(s, delta_2, relation=self.relation) for s in sigmas),
            sensitivity=delta_2, norm="l2")
        _, sample_dg, _ = _noise_api()
        source = self._source
        idx = [self._indices(c) for c in cl]

        def draw() -> list[np.ndarray]:
            return [np.asarray(sample_dg(s, int(np.prod(shape, dtype=np.int64)), source), dtype=np.int64)
                    .reshape(shape) for s, shape in zip(sigmas, shapes)]

        def exact(rows: Rows) -> list[np.ndarray]:
            answer, n = self._exact_marginals(rows, idx, shapes, maps)
            check_counts_of_records(answer, n, "marginals")
            for a, shape in zip(answer, shapes):
                if a.shape != shape:
                    raise SensitivityViolation("marginals: an exact table has another shape than its domain")
            return answer

        def release(answer: list[np.ndarray], noise: list[np.ndarray]) -> list[NoisyMarginal]:
            return [NoisyMarginal(c, (a + z).astype(np.int64), s) for c, a, z, s in zip(cl, answer, noise, sigmas)]

        return self._measure(spec, purpose=purpose, generator=generator, run_id=run_id, parameters=parameters,
                             noise=draw, exact=exact, release=release)

    # -- selection --------------------------------------------------------------------------------
    def select_marginal(self, candidates: Sequence[tuple[str, ...]], estimates: Sequence[np.ndarray],
                        epsilon: float, *, weights: Sequence[float] | None = None,
                        offsets: Sequence[float] | None = None, purpose: str, generator: str, run_id: str,
                        parameters: dict | None = None,
                        recode: Mapping[str, np.ndarray] | None = None) -> int:
        """Pick a candidate clique by the exponential mechanism (exact sampler).

        score_i = w_i * ||M_i(D) - estimates_i||_1 + offsets_i; sensitivity max|w_i| (x2 under
        replace-one); charged as ExponentialMechanismEvent(ε) (bounded range).
        """
        eps = positive(epsilon, "epsilon")
        if isinstance(candidates, (str, bytes)) or not isinstance(candidates, Sequence) or not candidates:
            raise ValueError("candidates must be a non-empty list of column-name tuples")
        cl = [self._clique(c, f"candidates[{i}]") for i, c in enumerate(candidates)]
        k = len(cl)
        maps = self._recode_maps(recode)
        if len(estimates) != k:
            raise ValueError(f"estimates has {len(estimates)} entries for {k} candidates")
        shapes = [self._shape(c, maps) for c in cl]
        est = []
        for i, (e, s) in enumerate(zip(estimates, shapes)):
            e = np.asarray(e, dtype=np.float64)
            if e.shape != s:
                raise ValueError(f"estimates[{i}] has shape {e.shape}, the marginal on {list(cl[i])} has {s}")
            if not np.all(np.isfinite(e)):
                raise ValueError(f"estimates[{i}] must be finite")
            est.append(e)
        w = self._reals(weights, k, 1.0, "weights")
        o = self._reals(offsets, k, 0.0, "offsets")
        sens = max(abs(x) for x in w) * (2.0 if self.relation is NeighbouringRelation.REPLACE_ONE else 1.0)
        if not sens > 0:
            raise ValueError("at least one weight must be non-zero")
        # Every score must stay finite whatever the rows are: |score_i| <= |w_i| (n + ||e_i||_1) + |o_i|
        # with n <= max_records.  A score that overflows to inf makes the sampler raise after the
        # charge, and whether it does is a deterministic, un-noised bit about the counts (weights
        # and offsets are the caller's: a threshold on ||M_i(D) - e_i||_1 at a near-free ε).
        n_max = float(self._gate.policy.max_records)
        with np.errstate(over="ignore", invalid="ignore"):
            bounds = [abs(wi) * (n_max + float(np.abs(e).sum())) + abs(oi) for wi, e, oi in zip(w, est, o)]
        if not all(math.isfinite(b) and b < 2.0 ** 1000 for b in bounds) or not math.isfinite(sens):
            raise ValueError("weights, offsets and estimates are too large: a selection score could overflow "
                             "(|w_i| (max_records + ||estimates_i||_1) + |offsets_i| must stay below 2**1000)")
        spec = Measurement(kind="select", query={"candidates": [list(c) for c in cl], "epsilon": eps,
                                                 "weights": w, "offsets": o, "sensitivity": sens,
                                                 **({"recode": {k: v.tolist() for k, v in maps.items()}}
                                                    if maps else {})},
                           events=(ExponentialMechanismEvent(eps, relation=self.relation),),
                           sensitivity=sens, norm="linf")
        _, _, sample_em = _noise_api()
        source = self._source
        idx = [self._indices(c) for c in cl]

        def exact(rows: Rows) -> np.ndarray:
            counts, n = self._exact_marginals(rows, idx, shapes, maps)
            check_counts_of_records(counts, n, "selection")
            for a, s in zip(counts, shapes):
                if a.shape != s:
                    raise SensitivityViolation("selection: an exact table has another shape than its domain")
            return selection_scores(counts, est, w, o)

        def release(scores: np.ndarray, _: Any) -> int:
            return int(sample_em(scores, eps, sens, source))

        return self._measure(spec, purpose=purpose, generator=generator, run_id=run_id, parameters=parameters,
                             noise=None, exact=exact, release=release)

    @staticmethod
    def _reals(values: Sequence[float] | None, k: int, default: float, name: str) -> list[float]:
        if values is None:
            return [default] * k
        if len(values) != k:
            raise ValueError(f"{name} has {len(values)} entries for {k} candidates")
        out = [float(v) for v in values]
        if not all(math.isfinite(v) for v in out):
            raise ValueError(f"{name} must be finite")
        return out

    # -- counts -----------------------------------------------------------------------------------
    def noisy_count(self, sigma: float, *, purpose: str, generator: str | None = None, run_id: str | None = None,
                    parameters: dict | None = None) -> int:
        """The number of rows plus discrete Gaussian noise of scale σ (Δ = 1; under replace-one n
        is fixed and the sensitivity is 0, charged as 1 all the same)."""
        s = positive(sigma, "sigma")
        spec = Measurement(kind="count", query={"sigma": s},
                           events=(DiscreteGaussianEvent(s, 1.0, relation=self.relation),),
                           sensitivity=1.0, norm="l2")
        _, sample_dg, _ = _noise_api()
        source = self._source
        return self._measure(spec, purpose=purpose, generator=generator, run_id=run_id, parameters=parameters,
                             noise=lambda: int(np.asarray(sample_dg(s, 1, source))[0]),
                             exact=lambda rows: np.array([rows.n_records], dtype=np.int64),
                             release=lambda a, z: int(a[0]) + z)

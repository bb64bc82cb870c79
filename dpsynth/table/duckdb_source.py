"""A private table's rows in files, read out of core by DuckDB.

`DuckDBSource(path)` names a CSV file, a Parquet file or a glob of Parquet
files.  A `PrivateTable` built on it never brings a row to Python: it encodes
the values to the schema's public codes *in SQL*, validates them in the same
engine, and asks the engine for exact counts only, inside charged
measurements.  What the engine returns is dense over the public domain (zeros
filled on the driver, so which cells are empty is never a separate fact) and
stays on the driver; noise is added afterwards by the exact samplers, exactly
as for a table in memory.

The fingerprint of a file source (what the policy's ``dataset.fingerprint``
governs) is an HMAC-SHA256 under the dataset key of the files' bytes
(`accountant.fingerprint.fingerprint_files`: the format, each file's name
relative to the pattern's directory, its size and the SHA-256 of its bytes),
streamed in 1 MiB chunks: no row is parsed, and an edited byte in any file —
or a file added to or removed from the glob — gives another fingerprint.
While a table is bound, each engine pass re-hashes the files first (their
unkeyed SHA-256s are kept privately from the bind) and checks afterwards that
no file was written during the pass (size, inode, modification and change
times): a table whose files changed after it was checked measures nothing.

Hostile input: file paths are expanded by Python (regular local files only)
and handed to DuckDB as bound parameters; column names are quoted identifiers
(control characters refused); the connection may read those files only
(``allowed_paths``, external access off, extension auto-loading off, the
configuration locked).  An engine error is re-raised without its text (a
parser's message quotes values and line numbers).
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from typing import Any, Sequence

import numpy as np

from ..schema import Schema
from ..schema.column import Column
from ..schema.errors import EncodingError
from .file_source import FileSource, check_columns
from .rows import ChargedReading
from .sensitivity import SensitivityViolation

__all__ = ["DuckDBSource", "EngineRows", "EngineError", "SourceChanged", "NeedsTableInMemory", "quote_identifier"]

_FORMATS = ("parquet", "csv")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Cells of the exact tables asked of one engine pass / kept on the driver between measurements.
MAX_PASS_CELLS = 50_000_000
# Grouping sets per scan: DuckDB holds a hash table per set at once, within its memory limit (one
# scan of 200 sets of adult's 3-way marginals runs out of 1 GB; 64 fit): one set per 32 MiB of it.
SET_BYTES = 32 << 20
MIN_PASS_SETS = 4
_UNITS = {"KB": 10 ** 3, "MB": 10 ** 6, "GB": 10 ** 9, "TB": 10 ** 12, "KIB": 1 << 10, "MIB": 1 << 20,
          "GIB": 1 << 30, "TIB": 1 << 40}
MAX_CACHED_CELLS = 50_000_000
# Asked-for marginals are counted inside wider ones (a union of up to 3 columns, at most this many
# cells) and summed down on the driver: fewer grouping sets per scan, the same exact counts.
COVER_CELLS = 1 << 18
COVER_WIDTH = 3


class EngineError(RuntimeError):
    """The engine could not read or count the table (its own message is not repeated: it may
    quote private values or line numbers)."""


class SourceChanged(RuntimeError):
    """The files changed after the table was bound to them; nothing is measured or released."""


class NeedsTableInMemory(TypeError):
    """A measurement that reads rows one by one (DP-SGD, PATE, schema learning, custom code)
    was asked of a table whose rows stay in the engine."""


def quote_identifier(name: str) -> str:
    """A SQL identifier for `name` ("..." with inner quotes doubled); control characters refused."""
    if not isinstance(name, str) or not name or _CONTROL.search(name):
        raise EncodingError(f"column name {name!r} cannot be used with a database engine (empty, or a control "
                            "character)")
    return '"' + name.replace('"', '""') + '"'


def _sql_text(value: str) -> str:
    if _CONTROL.search(value.replace("\t", "").replace("\n", "").replace("\r", "")) or "\x00" in value:
        raise EncodingError("a category holds a control character the engine cannot compare")
    return "'" + value.replace("'", "''") + "'"


class SQLDialect:
    """How one engine spells what the encoding needs (DuckDB here; PostgreSQL in
    `dpsynth.table.postgres_source`).  Every method returns SQL text for public facts or
    quoted identifiers only: no private value is ever written into a statement."""

    name = "DuckDB"
    double = "DOUBLE"
    text = "VARCHAR"
    # GROUPING_ID's arguments per pass (None: no limit).
    max_grouping_columns: int | None = None

    def type_class(self, sql_type: str) -> str:
        return _type_class(sql_type)

    def quote(self, name: str) -> str:
        return quote_identifier(name)

    def literal(self, x: float) -> str:
        if not math.isfinite(x):
            raise ValueError("a public bound must be finite")
        return f"CAST('{float(x)!r}' AS {self.double})"

    def isnan(self, x: str) -> str:
        return f"isnan({x})"

    def isfinite(self, x: str) -> str:
        return f"isfinite({x})"

    def to_double(self, q: str) -> str:
        return f"CAST({q} AS {self.double})"

    def try_double(self, q: str) -> str:
        return f"TRY_CAST({q} AS {self.double})"

    def epoch_seconds(self, q: str, sql_type: str) -> str:
        """Seconds since the epoch as the in-memory path computes them: int64 ns, then / 1e9."""
        ts = q if "TIME ZONE" in sql_type.upper() else f"CAST({q} AS TIMESTAMP_NS)"
        return f"(CAST(epoch_ns({ts}) AS DOUBLE) / CAST(1000000000 AS DOUBLE))"

    def try_epoch_seconds(self, q: str) -> str:
        return f"(CAST(epoch_ns(TRY_CAST({q} AS TIMESTAMPTZ)) AS DOUBLE) / CAST(1000000000 AS DOUBLE))"

    def bool_as_int(self, q: str) -> str:
        return f"CAST({q} AS BIGINT)"

    def not_whole(self, x: str) -> str:
        """True for a finite value with a fraction (`x` is known finite where this is used)."""
        return f"floor({x}) <> {x}"

    def text_equals(self, q: str, literal: str) -> str:
        return f"{q} = {literal}"

    def grouping_id(self, cols: str) -> str:
        return f"GROUPING_ID({cols})"


DUCKDB = SQLDialect()


class DuckDBSource(FileSource):
    """Files read by DuckDB, out of core.

    Args:
        path: a CSV file, a Parquet file, or a glob of Parquet files (``data/part-*.parquet``;
            ``**`` descends into folders).  Local regular files only.
        format: "parquet" or "csv" (default: from the suffix).
        memory_limit: DuckDB's memory limit (e.g. "2GB"); beyond it, grouping spills to
            `temp_directory`.
        threads: worker threads (default: DuckDB's, one per core).
        temp_directory: where the engine spills (default: a private folder under the system's
            temporary directory).

    The source is public description only (where the files are); the rows are read by the
    private table that holds it, inside charged measurements.
    """

    def __init__(self, path: str | os.PathLike, *, format: str | None = None, memory_limit: str = "2GB",
                 threads: int | None = None, temp_directory: str | os.PathLike | None = None) -> None:
        super().__init__(path, format=format)
        if not isinstance(memory_limit, str) or not re.fullmatch(r"\s*\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*",
                                                                  memory_limit, flags=re.I):
            raise ValueError("memory_limit must be a size such as '2GB' or '512MB'")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise ValueError("threads must be an int >= 1")
        self.memory_limit = memory_limit.strip()
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+)\s*", memory_limit)
        self.memory_bytes = int(float(m.group(1)) * _UNITS[m.group(2).upper()])
        self.threads = threads
        self.temp_directory = None if temp_directory is None else os.fspath(temp_directory)

    def __repr__(self) -> str:
        return f"DuckDBSource({self.pattern!r}, format={self.format!r}, files={len(self.files)})"

    # -- the engine ---------------------------------------------------------------------------
    def open_rows(self, schema: Schema, digests: list[tuple[str, int, str]],
                  stats: list[tuple[int, int, int, int, int]]) -> "EngineRows":
        return EngineRows(self, schema, digests, stats)

    def connect(self) -> Any:
        """A DuckDB connection that may read these files only (configuration locked)."""
        import duckdb

        temp = self.temp_directory or tempfile.mkdtemp(prefix="dpsynth-duckdb-")
        config = {"memory_limit": self.memory_limit, "autoinstall_known_extensions": False,
                  "autoload_known_extensions": False, "preserve_insertion_order": False,
                  "temp_directory": temp}
        if self.threads is not None:
            config["threads"] = self.threads
        con = duckdb.connect(":memory:", config=config)
        try:
            con.execute("SET TimeZone='UTC'")
            con.execute("SET allowed_paths=$p", {"p": list(self.files)})
            con.execute("SET allowed_directories=$d", {"d": [temp]})
            con.execute("SET enable_external_access=false")
            con.execute("SET lock_configuration=true")
        except Exception:
            con.close()
            raise
        return con

    def relation_sql(self, types: dict[str, str] | None = None) -> str:
        """The table function reading the files (the file list is the bound parameter $files)."""
        if self.format == "parquet":
            return "read_parquet($files, union_by_name=false)"
        if types is None:
            return "read_csv($files, header=true, sample_size=-1)"
        return "read_csv($files, header=true, types=$types)"


# ----------------------------------------------------------------------------------- encoding

def _type_class(sql_type: str) -> str:
    t = sql_type.upper()
    if t == "BOOLEAN":
        return "bool"
    if t in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
             "UBIGINT", "UHUGEINT"):
        return "int"
    if t in ("FLOAT", "DOUBLE", "REAL") or t.startswith("DECIMAL"):
        return "float" if not t.startswith("DECIMAL") else "decimal"
    if t == "VARCHAR":
        return "str"
    if t == "DATE" or t.startswith("TIMESTAMP"):
        return "time"
    return "other"


class _ColumnSQL:
    """SQL for one column: its missing test, its value on the column's axis, its problems, its code."""

    def __init__(self, col: Column, sql_type: str, dialect: SQLDialect = DUCKDB) -> None:
        self.col = col
        self.q = dialect.quote(col.name)
        self.d = dialect
        self.cls = dialect.type_class(sql_type)
        self.sql_type = sql_type
        q = self.q
        self.missing = f"({q} IS NULL OR {dialect.isnan(q)})" if self.cls == "float" else f"({q} IS NULL)"

    # Each problem: (SQL condition on a row, the in-memory path's message) in the order the
    # in-memory encoder checks them (dpsynth.schema.encode).
    def problems(self) -> list[tuple[str, str]]:
        col, q, cls = self.col, self.q, self.cls
        present = f"(NOT {self.missing})"
        out: list[tuple[str, str]] = []
        if not col.nullable:
            out.append((self.missing, "missing value, but the schema does not allow missing values "
                                      "(nullable = false)"))
        if col.kind == "boolean":
            if cls == "int":
                out.append((f"{present} AND {q} NOT IN (0, 1)",
                            "wrong type: a boolean column takes true/false (or 0/1)"))
            elif cls != "bool":
                out.append((present, "wrong type: a boolean column takes true/false (or 0/1)"))
            return out
        if col.is_discrete:
            if cls in ("time", "other"):
                out.append((present, "wrong type: a category must be a string or a number"))
            elif col.out_of_range != "other":
                out.append((f"{present} AND {self.discrete_code()} < 0",
                            "value is not one of the schema's categories (declare it, or set out_of_range = "
                            "\"other\")"))
            return out
        x = self.axis()
        if col.kind == "datetime":
            if cls in ("int", "float", "decimal", "bool"):
                out.append((present, "wrong type: a datetime column takes dates/times"))
                return out
            if cls == "other":
                out.append((present, "wrong type: a datetime column takes dates/times (or ISO text)"))
                return out
            if cls == "str":
                out.append((f"{present} AND {x} IS NULL", "wrong type: not a date/time"))
        else:
            if cls == "bool":
                out.append((present, f"wrong type: a {col.kind} column takes numbers, not true/false"))
                return out
            if cls in ("time", "other"):
                out.append((present, f"wrong type: a {col.kind} column takes numbers"))
                return out
            if cls == "str":
                out.append((f"{present} AND ({x} IS NULL OR {self.d.isnan(x)})", f"wrong type: a {col.kind} column "
                                                                           "takes numbers"))
            if col.kind == "integer":
                out.append((f"{present} AND {self.d.isfinite(x)} AND {self.d.not_whole(x)}",
                            "not a whole number in an integer column"))
        if col.out_of_range != "clip":
            lo, hi = self.d.literal(col.edges[0]), self.d.literal(col.edges[-1])
            out.append((f"{present} AND ({x} < {lo} OR {x} > {hi} OR NOT {self.d.isfinite(x)})",
                        "value outside the schema's bounds (or set out_of_range = \"clip\")"))
        return out

    def axis(self) -> str:
        """The value on the column's numeric axis (DOUBLE; seconds since the epoch for datetimes)."""
        q, cls = self.q, self.cls
        if self.col.kind == "datetime":
            if cls == "time":
                return self.d.epoch_seconds(q, self.sql_type)
            if cls == "str":
                return self.d.try_epoch_seconds(q)
            return f"CAST(NULL AS {self.d.double})"
        if cls in ("int", "float", "decimal"):
            return self.d.to_double(q)
        if cls == "str":
            return self.d.try_double(q)
        return f"CAST(NULL AS {self.d.double})"

    def discrete_code(self) -> str:
        """The category's index, `other_code` for an unknown value, -1 where neither applies."""
        col, q, cls = self.col, self.q, self.cls
        miss = -1 if col.other_code is None else col.other_code
        arms = []
        if col.kind == "boolean":
            if cls in ("bool", "int"):
                return f"(CASE WHEN CAST({q} AS INTEGER) = 0 THEN 0 WHEN CAST({q} AS INTEGER) = 1 THEN 1 ELSE -1 END)"
            return "(-1)"
        cats = col.categories
        if cls == "int" and all(type(c) is int for c in cats) and list(cats) == list(range(cats[0], cats[0] + len(cats))):
            # Contiguous integers in order (codes already): the code is an offset, no CASE arms.
            lo, hi = cats[0], cats[-1]
            return f"(CASE WHEN {q} BETWEEN {lo} AND {hi} THEN CAST({q} AS BIGINT) - ({lo}) ELSE {miss} END)"
        for i, c in enumerate(cats):
            lit = None
            if cls == "str" and isinstance(c, str):
                lit = (q, _sql_text(c), True)
            elif cls in ("int", "bool", "float", "decimal") and not isinstance(c, str):
                v = float(c) if not isinstance(c, bool) else float(int(c))
                if cls in ("int", "bool"):
                    if v.is_integer() and abs(v) < 2 ** 63:
                        lhs = self.d.bool_as_int(q) if cls == "bool" else q
                        lit = (lhs, str(int(c) if isinstance(c, (int, bool)) else int(v)), False)
                else:
                    lit = (self.d.to_double(q), self.d.literal(v), False)
            if lit is not None:
                test = self.d.text_equals(lit[0], lit[1]) if lit[2] else f"{lit[0]} = {lit[1]}"
                arms.append(f"WHEN {test} THEN {i}")
        if not arms:
            return f"({miss})"
        return f"(CASE {' '.join(arms)} ELSE {miss} END)"

    def code(self) -> str:
        """The column's code (-1 for a value the schema refuses: never counted)."""
        col = self.col
        missing = col.missing_code if col.nullable else -1
        if col.is_discrete:
            value = self.discrete_code()
        else:
            edges = [float(e) for e in col.edges]
            x = self.axis()
            if col.out_of_range == "clip":
                # np.clip: -inf/+inf go to the end bins; NaN is missing (or a refused value).
                x = f"least(greatest({x}, {self.d.literal(edges[0])}), {self.d.literal(edges[-1])})"
                bad = f"({self.axis()} IS NULL OR {self.d.isnan(self.axis())})"
            else:
                bad = (f"({x} IS NULL OR NOT {self.d.isfinite(x)} OR {x} < {self.d.literal(edges[0])} OR "
                       f"{x} > {self.d.literal(edges[-1])})")
            inner = edges[1:-1]

            def tree(lo: int, hi: int) -> str:  # the code, known to lie in [lo, hi]
                if lo == hi:
                    return str(lo)
                mid = (lo + hi + 1) // 2
                return f"(CASE WHEN {x} >= {self.d.literal(inner[mid - 1])} THEN {tree(mid, hi)} ELSE {tree(lo, mid - 1)} END)"

            value = f"(CASE WHEN {bad} THEN -1 ELSE {tree(0, len(edges) - 2)} END)"
            if col.kind == "integer":
                value = (f"(CASE WHEN {self.d.isfinite(self.axis())} AND {self.d.not_whole(self.axis())} THEN -1 "
                         f"ELSE {value} END)")
        return f"(CASE WHEN {self.missing} THEN {missing} ELSE {value} END)"


def _cells(cols: Sequence[int], sizes: Sequence[int]) -> int:
    return int(np.prod([sizes[j] for j in cols], dtype=np.int64))


def _cover(wanted: Sequence[tuple[int, ...]], sizes: Sequence[int]) -> dict[tuple[int, ...], tuple[int, ...]]:
    """{asked set: the wider set it is counted in} — greedy: each asked set joins the group whose
    union grows least while staying within COVER_WIDTH columns and COVER_CELLS cells (public:
    depends on the asked sets and the domain only)."""
    groups: list[set[int]] = []
    member: dict[tuple[int, ...], int] = {}
    for k in sorted(wanted, key=lambda k: (-len(k), -_cells(k, sizes), k)):
        best, best_cells = None, None
        for g, u in enumerate(groups):
            merged = u | set(k)
            n = _cells(sorted(merged), sizes)
            if len(merged) <= max(COVER_WIDTH, len(k)) and (merged == u or n <= COVER_CELLS):
                if best_cells is None or n < best_cells:
                    best, best_cells = g, n
        if best is None:
            groups.append(set(k))
            best = len(groups) - 1
        else:
            groups[best] |= set(k)
        member[k] = best
    return {k: tuple(sorted(groups[g])) for k, g in member.items()}


def _engine_error(exc: BaseException, what: str) -> EngineError:
    return EngineError(f"{what}: the engine failed ({type(exc).__name__}); its message is not shown (it may quote "
                       "private values)")


class EngineRows(ChargedReading):
    """The rows of a `DuckDBSource`, bound to a complete schema; readable (as exact counts only)
    inside `reading(receipt)`, like `Rows`.  Built by `PrivateTable`, never by callers."""

    _dialect = DUCKDB

    __slots__ = ("_source", "_schema", "_con", "_params", "_from", "_cols", "_digests", "_stats", "_n",
                 "_depth", "_cache", "_cached_cells")

    def __init__(self, source: DuckDBSource, schema: Schema, digests: list[tuple[str, int, str]],
                 stats: list[tuple[int, int, int, int, int]]) -> None:
        """Opens the engine, checks the columns and every value against the schema (errors name
        the column and the problem, never a row or a value) and counts the rows.  `digests` and
        `stats` were taken (stats first) when the files were fingerprinted: a file written since
        is refused here."""
        schema._require_complete()
        self._source = source
        self._schema = schema
        self._digests = digests
        self._depth = 0
        self._cache: dict[tuple[int, ...], np.ndarray] = {}
        self._cached_cells = 0
        try:
            self._con = source.connect()
        except Exception as exc:  # noqa: BLE001
            raise _engine_error(exc, "opening the engine") from None
        try:
            self._params: dict[str, Any] = {"files": list(source.files)}
            try:
                described = self._con.execute(f"DESCRIBE SELECT * FROM {source.relation_sql()}",
                                              self._params).fetchall()
            except Exception as exc:  # noqa: BLE001
                raise _engine_error(exc, "reading the table's columns") from None
            types = {str(r[0]): str(r[1]) for r in described}
            if source.format == "csv":
                self._params["types"] = types
                self._from = source.relation_sql(types)
            else:
                self._from = source.relation_sql()
            check_columns([str(r[0]) for r in described], schema)
            self._cols = [_ColumnSQL(c, types[c.name]) for c in schema.columns]
            self._n = self._validate()
            if self._n == 0:
                raise EncodingError("the table is empty")
            if source._stats() != stats:
                raise SourceChanged("the files changed while the table was being checked")
            self._stats = stats
        except BaseException:
            self._con.close()
            raise

    def __repr__(self) -> str:
        return "EngineRows(<private>)"

    def __reduce__(self) -> Any:
        raise TypeError("private rows cannot be pickled or copied")

    def _validate(self) -> int:
        checks, messages = validation_checks(self._cols)
        sql = f"SELECT count(*) AS n{''.join(', ' + x for x in checks)} FROM {self._from}"
        try:
            row = self._con.execute(sql, self._params).fetchone()
        except Exception as exc:  # noqa: BLE001
            raise _engine_error(exc, "checking the table against the schema") from None
        raise_problems(self._cols, messages, row[1:])
        return int(row[0])

    @property
    def n_records(self) -> int:
        self._check()
        return self._n

    @property
    def frame(self) -> Any:
        raise NeedsTableInMemory("this measurement reads the rows one by one: it needs the table in memory (a "
                                 "pandas DataFrame), not a DuckDB source")

    @property
    def codes(self) -> Any:
        raise NeedsTableInMemory("the codes of a DuckDB source stay in the engine; only exact counts come back")

    def close(self) -> None:
        try:
            self._con.close()
        except Exception:  # noqa: BLE001
            pass

    def check_unchanged(self) -> None:
        """Refuse (before any charge) when a file was written since the table was bound."""
        if self._source._stats() != self._stats:
            raise SourceChanged("the table's files changed after the table was bound to them (size, inode or "
                                "times differ): bind the table again (its fingerprint is checked then)")

    # -- exact marginals ------------------------------------------------------------------
    def marginals(self, cliques: Sequence[Sequence[int]]) -> list[np.ndarray]:
        """Exact counts of each clique (column indices), dense over the public domain, int64,
        axes in the clique's order.  Cliques not computed before are computed in one engine
        pass per batch (GROUPING SETS)."""
        self._check()
        sizes = [c.col.size for c in self._cols]
        keys = [tuple(sorted(int(j) for j in cl)) for cl in cliques]
        todo = [k for k in dict.fromkeys(keys) if k not in self._cache]
        covers = _cover(todo, sizes)
        counted: dict[tuple[int, ...], np.ndarray] = {}
        batch: list[tuple[int, ...]] = []
        cells = 0
        max_sets = max(MIN_PASS_SETS, self._source.memory_bytes // SET_BYTES)
        max_cols = self._dialect.max_grouping_columns
        for u in dict.fromkeys(covers.values()):
            n = _cells(u, sizes)
            wide = max_cols is not None and len({j for s in batch for j in s} | set(u)) > max_cols
            if batch and (cells + n > MAX_PASS_CELLS or len(batch) >= max_sets or wide):
                counted.update(self._pass(batch, sizes))
                batch, cells = [], 0
            batch.append(u)
            cells += n
        if batch:
            counted.update(self._pass(batch, sizes))
        computed: dict[tuple[int, ...], np.ndarray] = {}
        for k, u in covers.items():
            wide = counted[u]
            drop = tuple(i for i, j in enumerate(u) if j not in k)
            computed[k] = wide.sum(axis=drop, dtype=np.int64) if drop else wide
        out = []
        for cl, k in zip(cliques, keys):
            table = self._cache.get(k)
            if table is None:
                table = computed[k]
            order = [k.index(int(j)) for j in cl]
            # A copy: the cached table never leaves this object.
            out.append(np.array(np.transpose(table, order), dtype=np.int64, copy=True))
        for k, t in computed.items():
            if self._cached_cells + t.size <= MAX_CACHED_CELLS:
                self._cache[k] = t
                self._cached_cells += t.size
        return out

    def _pass(self, sets: list[tuple[int, ...]], sizes: list[int]) -> dict[tuple[int, ...], np.ndarray]:
        used = sorted({j for s in sets for j in s})
        if not used:
            return {(): np.array(self._n, dtype=np.int64)}
        # The files must still be the ones bound (and fingerprinted): hashed again first.
        if self._source.file_digests() != self._digests:
            raise SourceChanged("the table's files are not the ones the table was bound to; nothing is released")
        self.check_unchanged()
        sql = grouping_sql(self._cols, used, sets, self._from)
        try:
            res = self._con.execute(sql, self._params).fetchnumpy()
        except Exception as exc:  # noqa: BLE001
            raise _engine_error(exc, "counting") from None
        self.check_unchanged()
        return tables_from_grouping(res, used, sets, sizes, self._n)


def validation_checks(cols: Sequence[_ColumnSQL]) -> tuple[list[str], list[tuple[int, str]]]:
    """(one aggregate per possible problem — true when some row has it —, (column index, the
    in-memory path's message) for each), in the in-memory encoder's order."""
    checks, messages = [], []
    for j, c in enumerate(cols):
        for k, (cond, what) in enumerate(c.problems()):
            checks.append(f"bool_or({cond}) AS p{j}_{k}")
            messages.append((j, what))
    return checks, messages


def raise_problems(cols: Sequence[_ColumnSQL], messages: Sequence[tuple[int, str]], flags: Sequence[Any]) -> None:
    """The first problem found, as the in-memory path words it: the column and the problem,
    never a row or a value."""
    for (j, what), flag in zip(messages, flags):
        if flag:
            name = cols[j].col.name
            raise EncodingError(f"column {name!r}: {what}", column=name)


def grouping_sql(cols: Sequence[_ColumnSQL], used: Sequence[int], sets: Sequence[tuple[int, ...]],
                 relation: str, dialect: SQLDialect = DUCKDB) -> str:
    """One pass: every row of `relation` encoded (the `used` columns, aliased k<j>), then
    counted over each grouping set and the grand total; columns gid, k<j>..., n."""
    alias = {j: f"k{j}" for j in used}
    enc = ", ".join(f"{cols[j].code()} AS {alias[j]}" for j in used)
    gsets = ", ".join("(" + ", ".join(alias[j] for j in s) + ")" for s in sets) + ", ()"
    keys = ", ".join(f"coalesce({alias[j]}, -2) AS {alias[j]}" for j in used)
    return (f"WITH enc AS (SELECT {enc} FROM {relation}) "
            f"SELECT {dialect.grouping_id(', '.join(alias[j] for j in used))} AS gid, {keys}, count(*) AS n "
            f"FROM enc GROUP BY GROUPING SETS ({gsets})")


def tables_from_grouping(res: Any, used: Sequence[int], sets: Sequence[tuple[int, ...]], sizes: Sequence[int],
                         n: int) -> dict[tuple[int, ...], np.ndarray]:
    """Dense exact tables from one GROUPING SETS pass: `res` maps "gid" (GROUPING_ID over the
    `used` columns, aliased k<j>), "k<j>" and "n" (counts) to arrays.  Every asked set is filled
    over its whole public domain (zeros included), the grand total must be the bound `n`, and
    a code outside the domain refuses the release (the files changed?)."""
    alias = {j: f"k{j}" for j in used}
    gid = np.asarray(res["gid"], dtype=np.int64)
    count = np.asarray(res["n"], dtype=np.int64)
    width = len(used)
    total_rows = gid == (1 << width) - 1
    if int(count[total_rows].sum()) != n:
        raise SourceChanged("the table's files hold another number of rows than when bound; nothing is "
                            "released")
    out = {}
    for s in sets:
        g = sum(1 << (width - 1 - p) for p, j in enumerate(used) if j not in s)
        sel = gid == g
        shape = tuple(sizes[j] for j in s)
        codes = [np.asarray(res[alias[j]], dtype=np.int64)[sel] for j in s]
        for c, m in zip(codes, shape):
            if c.size and (c.min() < 0 or c.max() >= m):
                raise SensitivityViolation("marginals: a row has no code in the public domain (the files "
                                           "changed?); nothing is released")
        table = np.zeros(shape, dtype=np.int64)
        table[tuple(codes)] = count[sel]
        out[s] = table
    return out

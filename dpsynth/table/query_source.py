"""A private table that a database query returns, counted inside the database's engine.

`QuerySource` is what the engines share (`PostgresSource` in
`dpsynth.table.postgres_source`; `DuckDBQuerySource` here: a DuckDB database file
attached read-only).  The data holder gives one read-only ``SELECT``; it is wrapped as a
subquery, and everything else runs as SQL in the engine, exactly as for files
(`dpsynth.table.duckdb_source`, whose expression builders are used with the engine's
dialect): each value is validated and encoded to the schema's public codes, and only the
counts of each ``GROUPING SETS`` pass come back, dense over the public domain (zeros filled
on the driver); noise is added on the driver after the charge.

**The fingerprint is of the rows, computed in the engine.**  A database has no bytes to
hash, and the rows must not leave it, so the engine hashes each row of the query's result
(its cells as text, each length-prefixed, NULL marked) under a key derived from the dataset
key (`accountant.fingerprint.query_row_key`) and sums the four 64-bit lanes of those
SHA-256 hashes over all rows: an order-independent digest of the result as a multiset.
The driver MACs the lane sums, the row count and the columns' names and engine types under
the dataset key (`accountant.fingerprint.fingerprint_query`): that is the fingerprint the
policy's ``dataset.fingerprint`` must hold.  The query's text does not enter it (two
queries giving the same rows are the same dataset); the engine does (a value's text is the
engine's).  The lane sums are private (like a file's plain hash) and stay on the driver.

**Change detection.**  Every counting pass computes the same digest in the same statement
(one snapshot of the database) and nothing is released unless it and the row count equal
those of the bind: a row inserted, deleted or edited since the table was bound stops the
run (the pass's charge stands; no output leaves).  Before each charge the query is described
again (its columns and types must be the bound ones).

**Hostile queries.**  The query must be one ``SELECT`` (or ``WITH … SELECT``): no ``;``
(other than one at the end), no comments, no ``$`` (parameters, dollar quotes) — refused
before the engine is asked anything.  It then runs wrapped as ``(…) AS src`` in a read-only
transaction (PostgreSQL) or on a database attached read-only (DuckDB), with a statement
timeout; a second statement cannot be prepared.  An engine error is re-raised without its
text, except for errors about the query's text itself (syntax, unknown column, read-only
refusals), which quote no row.
"""

from __future__ import annotations

import os
import re
import secrets
from typing import Any, Callable, Sequence

import numpy as np

from ..schema import Schema
from ..schema.errors import EncodingError
from .duckdb_source import (
    DUCKDB,
    EngineError,
    EngineRows,
    SourceChanged,
    SQLDialect,
    _ColumnSQL,
    _engine_error,
    grouping_sql,
    quote_identifier,
    raise_problems,
    tables_from_grouping,
    validation_checks,
)
from .engine_source import EngineSource
from .file_source import check_columns

__all__ = ["QuerySource", "QueryRows", "DuckDBQuerySource", "check_query"]

MAX_QUERY_CHARS = 100_000
LANES = 4
# What a statement may take before the engine cancels it (seconds; a source's default).
STATEMENT_TIMEOUT_S = 3600
_FIRST_WORD = re.compile(r"\s*\(*\s*(select|with)\b", re.I)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def check_query(query: Any) -> str:
    """The query as it will be wrapped (one trailing ';' dropped), or ValueError saying why
    it is refused: one read-only SELECT, no second statement, no comment, no parameter."""
    if not isinstance(query, str) or not query.strip():
        raise ValueError("the query must be a non-empty SELECT statement")
    if len(query) > MAX_QUERY_CHARS:
        raise ValueError(f"the query is longer than {MAX_QUERY_CHARS:,} characters")
    if _CONTROL.search(query):
        raise ValueError("the query holds a control character")
    text = query.strip()
    if text.endswith(";"):
        text = text[:-1].rstrip()
    if ";" in text:
        raise ValueError("the query must be one statement: no ';' (a ';' inside a string: use chr(59))")
    if "--" in text or "/*" in text:
        raise ValueError("the query must not hold comments (-- or /*)")
    if "$" in text:
        raise ValueError("the query must not hold '$' (parameters or dollar quotes)")
    if not _FIRST_WORD.match(text):
        raise ValueError("the query must be a SELECT (or WITH … SELECT) statement")
    return text


class QuerySource(EngineSource):
    """A read-only query over a database; subclasses name the engine (`_connect`, `_dialect`).

    Public description only: the query and where the database is.  The rows are read by
    the private table that holds the source, inside charged measurements."""

    engine_name = "database"
    dialect: SQLDialect = DUCKDB
    memory_bytes = 2 << 30  # grouping state per pass (as a DuckDB source with a 2 GB limit)

    def __init__(self, query: str, *, statement_timeout: float = STATEMENT_TIMEOUT_S) -> None:
        self.query = check_query(query)
        self.embedded = self.dialect.embed(self.query)  # as written inside our statements
        if isinstance(statement_timeout, bool) or not isinstance(statement_timeout, (int, float)) or \
                not 0 < statement_timeout <= 7 * 86400:
            raise ValueError("statement_timeout must be a number of seconds in (0, 604800]")
        self.statement_timeout = float(statement_timeout)

    # -- what an engine provides ----------------------------------------------------------------
    def _connect(self) -> "_Engine":
        raise NotImplementedError

    def _check_unchanged(self) -> None:
        """The source's own cheap test before a charge (a database file's times); none here."""

    # -- the fingerprint ------------------------------------------------------------------------
    def fingerprint(self, key: bytes) -> str:
        """The keyed fingerprint the policy's dataset.fingerprint must hold (module docstring):
        one pass over the query's rows in the engine."""
        from accountant.fingerprint import fingerprint_query, query_row_key

        engine = self._connect()
        try:
            columns = engine.describe(self.embedded)
            row = engine.one(digest_sql(self.embedded, [c for c, _ in columns], self.dialect, []),
                             query_row_key(bytes(key)))
        finally:
            engine.close()
        return fingerprint_query(self.dialect.name, columns, int(row[0]), [int(x) for x in row[1:]], bytes(key))

    def bind(self, schema: Schema, dataset_key: bytes | None, check_dataset: Callable[[str], Any]) -> "QueryRows":
        return QueryRows(self, schema, dataset_key, check_dataset)


class _Engine:
    """One open connection: `describe(query)` -> [(name, engine type)], `one(sql, key)` -> the
    one row a statement returns, `arrays(sql, key, names)` -> {name: array}."""

    def describe(self, query: str) -> list[tuple[str, str]]:
        raise NotImplementedError

    def one(self, sql: str, key: bytes) -> tuple:
        raise NotImplementedError

    def arrays(self, sql: str, key: bytes, names: Sequence[str]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


# ------------------------------------------------------------------------------- the digest

def row_hash_sql(names: Sequence[str], dialect: SQLDialect) -> str:
    """The keyed SHA-256 of one row (the key is the statement's parameter, never text in it):
    each cell as the engine's text, length-prefixed ("-" for NULL), joined by ","."""
    parts = []
    for name in names:
        t = f"CAST({quote_identifier(name)} AS {dialect.text})"
        parts.append(f"coalesce(CAST(length({t}) AS {dialect.text}) || ':' || {t}, '-')")
    return dialect.keyed_sha256(" || ',' || ".join(parts) if parts else "''")


def digest_sql(query: str, names: Sequence[str], dialect: SQLDialect, checks: Sequence[str]) -> str:
    """count(*), the lane sums of the rows' keyed hashes, then `checks` — one scan of the query."""
    lanes = ", ".join(f"sum({dialect.hash_lane('dpsynth_h', i)}) AS d{i}" for i in range(LANES))
    more = "".join(", " + c for c in checks)
    return (f"SELECT count(*) AS n, {lanes}{more} FROM (SELECT *, {row_hash_sql(names, dialect)} AS dpsynth_h "
            f"FROM (\n{query}\n) AS src) AS src")


class QueryRows(EngineRows):
    """The rows a `QuerySource`'s query returns, bound to a complete schema: fingerprinted and
    validated in the engine, then readable (as exact counts only) inside `reading(receipt)`.
    Built by `PrivateTable`, never by callers."""

    __slots__ = ("_engine", "_key", "_digest", "_columns", "_names")

    def __init__(self, source: QuerySource, schema: Schema, dataset_key: bytes | None,
                 check_dataset: Callable[[str], Any]) -> None:
        from accountant.fingerprint import fingerprint_query, query_row_key

        schema._require_complete()
        self._source = source
        self._schema = schema
        self._depth = 0
        self._cache = {}
        self._cached_cells = 0
        self._digests = None
        self._stats = None
        self._con = None
        self._params = None
        self._engine = source._connect()
        try:
            self._columns = self._engine.describe(source.embedded)
            check_columns([c for c, _ in self._columns], schema)
            if "dpsynth_h" in schema.names:
                raise EncodingError("the column name 'dpsynth_h' is reserved for a database source")
            types = dict(self._columns)
            self._names = [c for c, _ in self._columns]
            self._cols = [_ColumnSQL(c, types[c.name], source.dialect) for c in schema.columns]
            source.dialect.check_columns(self._cols)
            self._from = f"(\n{source.embedded}\n) AS src"
            # Without a dataset key (insecure development ledgers only) the rows are still
            # digested, under a random key: change detection does not depend on the policy.
            self._key = query_row_key(bytes(dataset_key) if dataset_key is not None else secrets.token_bytes(32))
            checks, messages = validation_checks(self._cols)
            row = self._engine.one(digest_sql(source.embedded, self._names, source.dialect, checks), self._key)
            n, self._digest = int(row[0]), tuple(int(x or 0) for x in row[1:1 + LANES])
            if dataset_key is not None:
                # The fingerprint first: a table that is not the governed one shows nothing of
                # its values (not even which column breaks the schema).
                check_dataset(fingerprint_query(source.dialect.name, self._columns, n, self._digest,
                                                bytes(dataset_key)))
            raise_problems(self._cols, messages, row[1 + LANES:])
            if n == 0:
                raise EncodingError("the table is empty")
            self._n = n
        except BaseException:
            self._engine.close()
            raise

    @property
    def _dialect(self) -> SQLDialect:  # type: ignore[override]
        return self._source.dialect

    def __repr__(self) -> str:
        return "QueryRows(<private>)"

    def close(self) -> None:
        self._engine.close()

    def check_unchanged(self) -> None:
        """Before a charge: the query still describes the bound columns and types, and the
        source's own test (a database file's times) passes.  The rows themselves are digested
        again in each pass, in the counting statement."""
        self._source._check_unchanged()
        if self._engine.describe(self._source.embedded) != self._columns:
            raise SourceChanged("the query's columns or their types changed since the table was bound; bind the "
                                "table again")

    def _pass(self, sets: list[tuple[int, ...]], sizes: list[int]) -> dict[tuple[int, ...], np.ndarray]:
        used = sorted({j for s in sets for j in s})
        if not used:
            return {(): np.array(self._n, dtype=np.int64)}
        d = self._source.dialect
        counts = grouping_sql(self._cols, used, sets, self._from, d)
        digest = digest_sql(self._source.embedded, self._names, d, [])
        # One statement, so one snapshot: the counts are of the rows whose digest is checked.
        sql = (f"SELECT g.*, h.n AS dn, {', '.join(f'h.d{i}' for i in range(LANES))} "
               f"FROM ({counts}) AS g CROSS JOIN ({digest}) AS h")
        names = ["gid", *(f"k{j}" for j in used), "n", "dn", *(f"d{i}" for i in range(LANES))]
        res = self._engine.arrays(sql, self._key, names)
        if len(res["dn"]) == 0 or int(res["dn"][0]) != self._n or \
                tuple(int(x or 0) for x in (res[f"d{i}"][0] for i in range(LANES))) != self._digest:
            raise SourceChanged("the query's rows are not the ones the table was bound to (a row was inserted, "
                                "deleted or changed); nothing is released")
        self._source._check_unchanged()
        return tables_from_grouping(res, used, sets, sizes, self._n)


# --------------------------------------------------------------------- DuckDB, a database file

class DuckDBQueryDialect(SQLDialect):
    """DuckDB, with the keyed row hash of a query source."""

    def embed(self, query: str) -> str:
        return query

    def keyed_sha256(self, text: str) -> str:
        return f"sha256($key || {text})"

    def hash_lane(self, h: str, i: int) -> str:
        return f"CAST(('0x' || substr({h}, {16 * i + 1}, 16)) AS UBIGINT)"

    def check_columns(self, cols: Sequence[_ColumnSQL]) -> None:
        pass


DUCKDB_QUERY = DuckDBQueryDialect()


class DuckDBQuerySource(QuerySource):
    """A query over a DuckDB database file, attached read-only (no extension needed).

    Args:
        database: the DuckDB database file (a local regular file).
        query: one SELECT over its tables (unqualified names resolve in that database).
        memory_limit, threads: as `DuckDBSource`.
        statement_timeout: seconds a statement may run before it is interrupted.
    """

    engine_name = "DuckDB"
    dialect = DUCKDB_QUERY

    def __init__(self, database: str | os.PathLike, query: str, *, memory_limit: str = "2GB",
                 threads: int | None = None, statement_timeout: float = STATEMENT_TIMEOUT_S) -> None:
        super().__init__(query, statement_timeout=statement_timeout)
        from .duckdb_source import _UNITS

        path = os.fspath(database)
        if not isinstance(path, str) or not path or "\x00" in path or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", path):
            raise ValueError("database must be a local DuckDB database file")
        real = os.path.realpath(path)
        if not os.path.isfile(real):
            raise FileNotFoundError(f"no database file {path!r}")
        if re.search(r"[\x00-\x1f\x7f]", real):
            raise ValueError("the database file's path holds a control character")
        if not isinstance(memory_limit, str) or not re.fullmatch(r"\s*\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*",
                                                                  memory_limit, flags=re.I):
            raise ValueError("memory_limit must be a size such as '2GB' or '512MB'")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise ValueError("threads must be an int >= 1")
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+)\s*", memory_limit)
        self.database = real
        self.memory_limit = memory_limit.strip()
        self.memory_bytes = int(float(m.group(1)) * _UNITS[m.group(2).upper()])
        self.threads = threads
        self._bound_stat = self._stat()

    def __repr__(self) -> str:
        return f"DuckDBQuerySource({self.database!r}, query=<{len(self.query)} characters>)"

    def _stat(self) -> tuple[int, int, int, int, int]:
        s = os.stat(self.database)
        return (s.st_dev, s.st_ino, s.st_size, s.st_mtime_ns, s.st_ctime_ns)

    def _check_unchanged(self) -> None:
        if self._stat() != self._bound_stat:
            raise SourceChanged("the database file was written after the source was made; make it again")

    def _connect(self) -> "_DuckDBEngine":
        return _DuckDBEngine(self)


class _DuckDBEngine(_Engine):
    def __init__(self, source: DuckDBQuerySource) -> None:
        import tempfile

        import duckdb

        temp = tempfile.mkdtemp(prefix="dpsynth-duckdb-")
        config = {"memory_limit": source.memory_limit, "autoinstall_known_extensions": False,
                  "autoload_known_extensions": False, "preserve_insertion_order": False, "temp_directory": temp}
        if source.threads is not None:
            config["threads"] = source.threads
        try:
            con = duckdb.connect(":memory:", config=config)
        except Exception as exc:  # noqa: BLE001
            raise _engine_error(exc, "opening the engine") from None
        try:
            literal = "'" + source.database.replace("'", "''") + "'"
            con.execute(f"ATTACH {literal} AS dpsynth_src (READ_ONLY)")
            con.execute("USE dpsynth_src")
            con.execute("SET TimeZone='UTC'")
            con.execute("SET allowed_paths=$p", {"p": [source.database]})
            con.execute("SET allowed_directories=$d", {"d": [temp]})
            con.execute("SET enable_external_access=false")
            con.execute("SET lock_configuration=true")
        except Exception as exc:  # noqa: BLE001
            con.close()
            raise _engine_error(exc, "attaching the database (read-only)") from None
        self._con = con
        self._timeout = source.statement_timeout

    def _run(self, sql: str, params: dict, what: str) -> Any:
        import threading

        timer = threading.Timer(self._timeout, self._con.interrupt)  # DuckDB has no statement_timeout
        timer.start()
        try:
            return self._con.execute(sql, params)
        except Exception as exc:  # noqa: BLE001
            if type(exc).__name__ == "InterruptException":
                raise EngineError(f"{what}: the statement ran past statement_timeout ({self._timeout:g} s)") from None
            raise _query_error(exc, what) from None
        finally:
            timer.cancel()

    def describe(self, query: str) -> list[tuple[str, str]]:
        rows = self._run(f"DESCRIBE SELECT * FROM (\n{query}\n) AS src", {}, "reading the query's columns").fetchall()
        return [(str(r[0]), str(r[1])) for r in rows]

    def one(self, sql: str, key: bytes) -> tuple:
        return tuple(self._run(sql, {"key": key.hex()}, "checking the table against the schema").fetchone())

    def arrays(self, sql: str, key: bytes, names: Sequence[str]) -> dict[str, np.ndarray]:
        rows = self._run(sql, {"key": key.hex()}, "counting").fetchall()
        return {n: np.array([r[i] for r in rows], dtype=object) for i, n in enumerate(names)}

    def close(self) -> None:
        try:
            self._con.close()
        except Exception:  # noqa: BLE001
            pass


def _query_error(exc: BaseException, what: str) -> EngineError:
    """DuckDB: a binder or parser error is about the query's text (shown); any other error is
    re-raised without its text (it may quote a value)."""
    name = type(exc).__name__
    if name in ("ParserException", "BinderException", "CatalogException", "PermissionException"):
        text = " ".join(str(exc).split())[:500]
        return EngineError(f"{what}: the query was refused ({name}): {text}")
    return _engine_error(exc, what)

"""A private table that a PostgreSQL query returns, with PostgreSQL itself as the engine.

`PostgresSource(dsn, query)`: the query is wrapped as a subquery, and validation, encoding
to the schema's public codes and the ``GROUPING SETS`` counts run as SQL inside the server
(the DuckDB path's expression builders, spelt in PostgreSQL's dialect here); only dense
counts come back (`dpsynth.table.query_source` says how the rows are fingerprinted and
how a change is caught).

Each statement runs in its own ``READ ONLY`` transaction with ``statement_timeout``,
``lock_timeout`` and fixed output settings (UTC, ISO dates, shortest-exact floats, so the
rows' text — and so the fingerprint — does not depend on the server's defaults), through
the extended protocol (one statement per call: a second one cannot be prepared).  Connect
with a role that may only read what the query names.

The DSN's password: give it in ``PGPASSWORD`` or a passfile (``~/.pgpass``,
``PGPASSFILE``) rather than in the DSN.  Either way the source shows the DSN with any
password replaced by ``***`` (`accountant.ledger.postgres.redact_dsn`) and scrubs it from
every message; nothing of the DSN enters the ledger (the fingerprint is of the rows).

Column types: a numeric or datetime column of the schema must come from a number, date or
timestamp column of the query (a text column is refused, naming the column: cast it in the
query) — PostgreSQL 15 has no non-failing text-to-number cast, and a parse that differs from
pandas' would encode the same value differently.  A categorical column may be text, a number
or a boolean, as in memory.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..schema.errors import EncodingError
from .duckdb_source import EngineError, SQLDialect, _ColumnSQL
from .query_source import STATEMENT_TIMEOUT_S, QuerySource, _Engine

__all__ = ["PostgresSource", "POSTGRES"]

_CLASSES = {"bool": "bool", "int2": "int", "int4": "int", "int8": "int", "float4": "float", "float8": "float",
            "numeric": "decimal", "text": "str", "varchar": "str", "bpchar": "str", "name": "str", "date": "time",
            "timestamp": "time", "timestamptz": "time"}
# SQLSTATE classes whose messages are about the query's text, never a row: syntax and access
# rules (42), a read-only transaction refusing a write (25006), a cancelled statement (57014).
_SHOWN_STATES = ("42", "25006", "57014", "0A000")
CONNECT_TIMEOUT_S = 30
# Where a statement takes the row key: made psycopg's placeholder when the statement is sent,
# after every other '%' was doubled (a '%' in the query or a category is the text's own).
# Control characters cannot occur in a checked query, a quoted identifier or a category.
_KEY = "\x01key\x01"


def _for_psycopg(sql: str) -> str:
    return sql.replace("%", "%%").replace(_KEY, "%(key)s")


class PostgresDialect(SQLDialect):
    """PostgreSQL's spelling of the encoding (types by their pg_type names)."""

    name = "PostgreSQL"
    double = "double precision"
    text = "text"
    max_grouping_columns = 31  # GROUPING() takes at most 31 arguments

    def type_class(self, sql_type: str) -> str:
        return _CLASSES.get(sql_type, "other")

    def embed(self, query: str) -> str:
        return query

    def isnan(self, x: str) -> str:
        return f"({x} = CAST('NaN' AS double precision))"  # NaN equals NaN in PostgreSQL

    def isfinite(self, x: str) -> str:
        return (f"({x} NOT IN (CAST('Infinity' AS double precision), CAST('-Infinity' AS double precision), "
                f"CAST('NaN' AS double precision)))")

    def try_double(self, q: str) -> str:
        raise AssertionError("text columns for numbers are refused before any SQL is built")

    def epoch_seconds(self, q: str, sql_type: str) -> str:
        # As the in-memory path: int64 nanoseconds, then / 1e9 in floating point (two roundings).
        return (f"(CASE WHEN isfinite({q}) THEN CAST(CAST(EXTRACT(EPOCH FROM {q}) * 1000000000 AS bigint) AS "
                f"double precision) / CAST(1000000000 AS double precision) ELSE CAST('NaN' AS double precision) END)")

    def try_epoch_seconds(self, q: str) -> str:
        raise AssertionError("text columns for datetimes are refused before any SQL is built")

    def bool_as_int(self, q: str) -> str:
        return f"CAST({q} AS integer)"

    def text_equals(self, q: str, literal: str) -> str:
        return f'{q} = {literal} COLLATE "C"'  # bytewise, whatever the column's collation

    def grouping_id(self, cols: str) -> str:
        return f"GROUPING({cols})"

    def keyed_sha256(self, text: str) -> str:
        return f"sha256(CAST({_KEY} AS bytea) || convert_to({text}, 'UTF8'))"

    def hash_lane(self, h: str, i: int) -> str:
        return f"CAST(CAST(('x' || encode(substring({h} FROM {8 * i + 1} FOR 8), 'hex')) AS bit(64)) AS bigint)"

    def check_columns(self, cols: Sequence[_ColumnSQL]) -> None:
        for c in cols:
            if not c.col.is_discrete and c.cls == "str":
                raise EncodingError(f"column {c.col.name!r}: a {c.col.kind} column read from PostgreSQL must be a "
                                    f"{'date or timestamp' if c.col.kind == 'datetime' else 'number'} column, not "
                                    f"text (cast it in the query)", column=c.col.name)


POSTGRES = PostgresDialect()


class PostgresSource(QuerySource):
    """One read-only SELECT over a PostgreSQL database, run by the server.

    Args:
        dsn: a libpq connection string or postgresql:// URL (prefer PGPASSWORD or a passfile
            to a password in it; it is never shown).
        query: one SELECT (or WITH … SELECT); its columns must be exactly the schema's.
        statement_timeout: seconds a statement may run before the server cancels it.
    """

    engine_name = "PostgreSQL"
    dialect = POSTGRES
    memory_bytes = 2 << 30

    def __init__(self, dsn: str, query: str, *, statement_timeout: float = STATEMENT_TIMEOUT_S) -> None:
        super().__init__(query, statement_timeout=statement_timeout)
        from accountant.ledger.postgres import _password_forms, redact_dsn

        if not isinstance(dsn, str) or not dsn.strip() or "\x00" in dsn:
            raise ValueError("dsn must be a PostgreSQL connection string (postgresql://… or key=value …)")
        self.__dsn = dsn
        self._secrets = _password_forms(dsn)
        self.location = redact_dsn(dsn)

    def __repr__(self) -> str:
        return f"PostgresSource({self.location!r}, query=<{len(self.query)} characters>)"

    def __reduce__(self) -> Any:
        raise TypeError("a PostgresSource holds a connection string; make it again where it is needed")

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _connect(self) -> "_PostgresEngine":
        return _PostgresEngine(self, self.__dsn)


class _PostgresEngine(_Engine):
    def __init__(self, source: PostgresSource, dsn: str) -> None:
        try:
            import psycopg
        except ImportError:
            raise ImportError("a PostgreSQL source needs psycopg: pip install 'dpsynth[postgres]'") from None
        self._source = source
        try:
            self._conn = psycopg.connect(dsn, autocommit=True, prepare_threshold=None,
                                         connect_timeout=CONNECT_TIMEOUT_S, application_name="dpsynth-source")
        except psycopg.Error as exc:
            detail = " ".join(str(exc).split()) or type(exc).__name__
            raise EngineError(source._scrub(f"connecting to PostgreSQL ({source.location}): {detail}")) from None
        self._conn.read_only = True  # every transaction below: BEGIN READ ONLY

    def _run(self, sql: str, params: dict, what: str) -> list[tuple]:
        import psycopg

        timeout_ms = int(self._source.statement_timeout * 1000)
        try:
            with self._conn.transaction():
                with self._conn.cursor() as cur:
                    # Fixed output settings: the rows' text (so the fingerprint) is the server's
                    # defaults' no more.  SET LOCAL: gone when the transaction ends.
                    for setting in (f"statement_timeout = {timeout_ms}", "lock_timeout = 60000",
                                    "TimeZone = 'UTC'", "DateStyle = 'ISO, YMD'", "IntervalStyle = 'postgres'",
                                    "extra_float_digits = 1", "standard_conforming_strings = on",
                                    "bytea_output = 'hex'"):
                        cur.execute(f"SET LOCAL {setting}")
                    cur.execute(_for_psycopg(sql), params)
                    return cur.fetchall()
        except psycopg.Error as exc:
            raise self._error(exc, what) from None

    def _error(self, exc: BaseException, what: str) -> EngineError:
        state = getattr(exc, "sqlstate", None) or ""
        if state and state.startswith(_SHOWN_STATES):
            diag = getattr(exc, "diag", None)
            text = (getattr(diag, "message_primary", None) or str(exc).splitlines()[0])[:500]
            return EngineError(self._source._scrub(f"{what}: the query was refused (SQLSTATE {state}): {text}"))
        return EngineError(f"{what}: the engine failed ({type(exc).__name__}{', SQLSTATE ' + state if state else ''}); "
                           "its message is not shown (it may quote private values)")

    def describe(self, query: str) -> list[tuple[str, str]]:
        import psycopg

        try:
            with self._conn.transaction():
                with self._conn.cursor() as cur:
                    cur.execute("SET LOCAL statement_timeout = 60000")
                    cur.execute(_for_psycopg(f"SELECT * FROM (\n{query}\n) AS src LIMIT 0"), {})
                    described = [(d.name, d.type_code) for d in cur.description]
                    oids = sorted({int(t) for _, t in described})
                    names = dict(cur.execute("SELECT oid, typname FROM pg_catalog.pg_type WHERE oid = ANY(%s)",
                                             (oids,)).fetchall())
        except psycopg.Error as exc:
            raise self._error(exc, "reading the query's columns") from None
        return [(str(n), str(names.get(int(t), t))) for n, t in described]

    def one(self, sql: str, key: bytes) -> tuple:
        rows = self._run(sql, {"key": key}, "checking the table against the schema")
        return tuple(rows[0])

    def arrays(self, sql: str, key: bytes, names: Sequence[str]) -> dict[str, np.ndarray]:
        rows = self._run(sql, {"key": key}, "counting")
        return {n: np.array([r[i] for r in rows], dtype=object) for i, n in enumerate(names)}

    def close(self) -> None:
        try:
            self._conn.close()
        except Exception:  # noqa: BLE001
            pass

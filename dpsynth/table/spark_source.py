"""A private table's rows in Parquet files, read by Spark (local mode or a cluster).

`SparkSource(path, master="local[2]")` names a Parquet file or a glob of Parquet files
(`dpsynth.table.file_source`: the same listing, keyed fingerprint and change detection as
the DuckDB source).  A `PrivateTable` built on it never brings a row to the driver: the
executors validate and encode the rows to the schema's public codes in Spark SQL — the
DuckDB path's expression builders in Spark's dialect (`SparkDialect`), vectorised in the
JVM — or, where a numeric or datetime column is read as text (Spark's parsers are not
pandas'), with the *same* Python code as a table in memory (`Schema.validate` then
`Schema.encode`, in `mapInPandas`); the
encoded rows stay cached in the engine, and the driver asks only for exact counts of
whole cliques, in one ``GROUPING SETS`` pass per batch of marginals, inside charged
measurements.  Counts come back dense over the public domain (zeros filled on the
driver) and noise is added there afterwards by the exact samplers.

The engine is inside the trust boundary (DESIGN.md: engines are part of the table): it
sees the rows.  What leaves it: the number of rows (checked against the policy's public
bound, as for a table in memory), exact counts inside charged measurements, and — when a
value does not fit the schema — the in-memory path's own error, which names the column and
the problem, never a row or a value (an executor's other errors are re-raised without their
text).  Files must be readable by the driver (to fingerprint them) and by the executors (a
shared file system on a cluster).  CSV is not read by Spark here: its type inference
differs from pandas', so the same file could encode differently; convert it to Parquet or
use the DuckDB source.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any, Iterator

import numpy as np

from ..schema import Schema
from ..schema.errors import EncodingError, SchemaError
from .duckdb_source import (
    EngineRows,
    SourceChanged,
    SQLDialect,
    _ColumnSQL,
    _engine_error,
    quote_identifier,
    raise_problems,
    tables_from_grouping,
    validation_checks,
)
from .file_source import FileSource, check_columns

__all__ = ["SparkSource", "SparkRows", "spark_available", "valid_master"]

_MASTER = re.compile(r"local(\[(\d+|\*)\])?|spark://[A-Za-z0-9.\-]+(:\d+)?(,[A-Za-z0-9.\-]+(:\d+)?)*|yarn|"
                     r"k8s://https?://[A-Za-z0-9.\-]+(:\d+)?")
# What an executor's encoding error carries back: a marker, the column, our own message.
_MARK = "DPSYNTH-ENCODING-ERROR"
_MARKED = re.compile(_MARK + r"\[(?P<column>[^\]\n]*)\]\[(?P<message>[^\]\n]*)\]")
# The driver may hold this many bytes of grouping state per pass (as the DuckDB source's limit).
PASS_BYTES = 2 << 30


_CLASSES = {"boolean": "bool", "tinyint": "int", "smallint": "int", "int": "int", "bigint": "int", "float": "float",
            "double": "float", "string": "str", "date": "time", "timestamp": "time", "timestamp_ntz": "time"}


class SparkDialect(SQLDialect):
    """Spark SQL's spelling of the encoding (types by `DataFrame.dtypes`' simple strings).

    Spark's NaN equals NaN and sorts above every number (as PostgreSQL's); `isnan(NULL)` is
    false, so the finite test names NaN itself; `floor` returns BIGINT, so a fraction is
    `pmod(x, 1) <> 0`; timestamps carry microseconds (`unix_micros`), the ns axis of pandas is
    micros · 1000."""

    name = "Spark"

    def type_class(self, sql_type: str) -> str:
        t = sql_type.lower()
        if t.startswith("decimal"):
            return "decimal"
        return _CLASSES.get(t, "other")

    def quote(self, name: str) -> str:
        quote_identifier(name)  # the same refusals (empty, control characters)
        return "`" + name.replace("`", "``") + "`"

    def isfinite(self, x: str) -> str:
        return (f"({x} NOT IN (CAST('Infinity' AS DOUBLE), CAST('-Infinity' AS DOUBLE)) AND NOT isnan({x}))")

    def try_double(self, q: str) -> str:
        raise AssertionError("text columns for numbers are encoded by the in-memory code on Spark")

    def epoch_seconds(self, q: str, sql_type: str) -> str:
        ts = q if sql_type.lower() == "timestamp" else f"CAST({q} AS TIMESTAMP)"
        return f"(CAST(unix_micros({ts}) * 1000 AS DOUBLE) / CAST(1000000000 AS DOUBLE))"

    def try_epoch_seconds(self, q: str) -> str:
        raise AssertionError("text columns for datetimes are encoded by the in-memory code on Spark")

    def not_whole(self, x: str) -> str:
        return f"pmod({x}, CAST(1 AS DOUBLE)) <> 0"

    def grouping_id(self, cols: str) -> str:
        return f"grouping_id({cols})"

    @staticmethod
    def in_sql(col: _ColumnSQL) -> bool:
        """Whether Spark SQL encodes this column as the in-memory path does: not for text read
        as numbers or datetimes (Spark's parsers are not pandas')."""
        return col.col.is_discrete or col.cls != "str"


SPARK = SparkDialect()


def valid_master(master: Any) -> bool:
    """True for local, local[N], local[*], spark://HOST:PORT[,HOST:PORT…], yarn, k8s://https://HOST:PORT."""
    return isinstance(master, str) and _MASTER.fullmatch(master) is not None


def spark_available() -> bool:
    """True when pyspark can be imported (the `dpsynth[spark]` extra) and a Java runtime is on PATH."""
    import shutil

    try:
        import pyspark  # noqa: F401
    except Exception:  # noqa: BLE001
        return False
    return shutil.which("java") is not None or bool(os.environ.get("JAVA_HOME"))


class SparkSource(FileSource):
    """Parquet files read by Spark.

    Args:
        path: a Parquet file or a glob of Parquet files (local paths, shared with the executors
            on a cluster).
        master: the Spark master ("local[2]" by default; "local[*]", "spark://host:7077",
            "yarn", "k8s://https://host:port"), used when no session is given.
        session: an existing SparkSession to use instead (e.g. the one `spark-submit` made).
        encode_in_sql: encode and validate in Spark SQL (the DuckDB path's expressions, in
            Spark's dialect; default) rather than with the in-memory code in Python workers
            (`mapInPandas`, always used when a numeric or datetime column is read as text).
    """

    formats = ("parquet",)
    engine_name = "Spark"

    def __init__(self, path: str | os.PathLike, *, master: str = "local[2]", session: Any = None,
                 format: str | None = None, encode_in_sql: bool = True) -> None:
        super().__init__(path, format=format)
        if not isinstance(encode_in_sql, bool):
            raise TypeError("encode_in_sql must be True or False")
        self.encode_in_sql = encode_in_sql
        if session is None and not valid_master(master):
            raise ValueError(f"master must be local, local[N], local[*], spark://HOST:PORT, yarn or "
                             f"k8s://https://HOST:PORT, got {master!r}")
        self.master = master
        self.session = session
        self.memory_bytes = PASS_BYTES

    def __repr__(self) -> str:
        return f"SparkSource({self.pattern!r}, master={self.master!r}, files={len(self.files)})"

    def spark(self) -> Any:
        """The session: the one given, else one for `master` (UI off, UTC, this Python on the workers)."""
        if self.session is not None:
            return self.session
        try:
            from pyspark.sql import SparkSession
        except ImportError:
            raise ImportError("the Spark engine needs pyspark: pip install 'dpsynth[spark]' (and a Java 17+ "
                              "runtime)") from None
        import warnings

        # pyspark 4.x warns on every conversion that pandas 3 is not yet "fully supported"; the
        # encoding is ours (Schema.encode on each batch) and tested equal to numpy's counts.
        warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas",
                                category=FutureWarning)
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        spark = (SparkSession.builder.master(self.master).appName("dpsynth")
                 .config("spark.ui.enabled", "false")
                 .config("spark.sql.session.timeZone", "UTC")
                 .config("spark.sql.execution.arrow.pyspark.enabled", "true")
                 .config("spark.sql.shuffle.partitions", "8")
                 .getOrCreate())
        # FATAL, not ERROR: Spark logs a failed SQL expression at ERROR with the offending value
        # quoted; our own message (column and problem, no value) is what the caller gets.
        spark.sparkContext.setLogLevel("FATAL")
        return spark

    def open_rows(self, schema: Schema, digests: list[tuple[str, int, str]],
                  stats: list[tuple[int, int, int, int, int]]) -> "SparkRows":
        return SparkRows(self, schema, digests, stats)


class _Coded:
    """What `EngineRows.marginals` needs of a column: its public facts."""

    __slots__ = ("col",)

    def __init__(self, col: Any) -> None:
        self.col = col


def _encoder(schema: Schema) -> Any:
    """The function the executors run on each batch: the in-memory path's validation and
    encoding; an error it raises goes back marked (column and our message only)."""
    names = [f"k{j}" for j in range(len(schema.columns))]

    def encode(batches: Iterator[Any]) -> Iterator[Any]:
        import pandas as pd

        for pdf in batches:
            try:
                codes = schema.encode(schema.validate(pdf[list(schema.names)]))
            except (EncodingError, SchemaError) as exc:
                column = getattr(exc, "column", None) or ""
                message = str(exc).replace("]", ")").replace("\n", " ")
                raise RuntimeError(f"{_MARK}[{column}][{message}]") from None
            yield pd.DataFrame(np.asarray(codes, dtype=np.int32), columns=names)

    return encode


def _executor_error(exc: BaseException, what: str) -> BaseException:
    """Our own encoding error when an executor raised one (marked); else the engine error
    without its text (it may quote private values)."""
    m = _MARKED.search(str(exc))
    if m:
        column = m.group("column") or None
        return EncodingError(m.group("message"), column=column) if column else EncodingError(m.group("message"))
    return _engine_error(exc, what)


class SparkRows(EngineRows):
    """The rows of a `SparkSource`, bound to a complete schema: encoded and validated in the
    executors, cached there; readable (as exact counts only) inside `reading(receipt)`.  Built
    by `PrivateTable`, never by callers."""

    __slots__ = ("_spark", "_codes", "_view")

    def __init__(self, source: SparkSource, schema: Schema, digests: list[tuple[str, int, str]],
                 stats: list[tuple[int, int, int, int, int]]) -> None:
        schema._require_complete()
        self._source = source
        self._schema = schema
        self._digests = digests
        self._depth = 0
        self._cache = {}
        self._cached_cells = 0
        self._cols = [_Coded(c) for c in schema.columns]
        self._codes = None
        try:
            self._spark = source.spark()
            frame = self._spark.read.parquet(*source.files)
        except ImportError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise _engine_error(exc, "reading the table's columns") from None
        check_columns(list(frame.columns), schema)
        from pyspark import StorageLevel

        types = dict(frame.dtypes)
        cols = [_ColumnSQL(c, types[c.name], SPARK) for c in schema.columns]
        if source.encode_in_sql and all(SPARK.in_sql(c) for c in cols):
            # Spark SQL: the DuckDB path's expressions, vectorised in the JVM (no Python workers).
            raw = f"dpsynth_raw_{id(self):x}"
            frame.createOrReplaceTempView(raw)
            checks, messages = validation_checks(cols)
            try:
                row = self._spark.sql(f"SELECT count(*) AS n{''.join(', ' + c for c in checks)} FROM {raw}").collect()[0]
            except Exception as exc:  # noqa: BLE001
                self._spark.catalog.dropTempView(raw)
                raise _engine_error(exc, "checking the table against the schema") from None
            try:
                raise_problems(cols, messages, list(row)[1:])
            except EncodingError:
                self._spark.catalog.dropTempView(raw)
                raise
            enc = ", ".join(f"CAST({c.code()} AS INT) AS k{j}" for j, c in enumerate(cols))
            codes = self._spark.sql(f"SELECT {enc} FROM {raw}")
            fail = _engine_error
        else:
            # The in-memory path's own code in the executors (text read as numbers or dates).
            raw = None
            ddl = ", ".join(f"k{j} int" for j in range(len(schema.columns)))
            codes = frame.mapInPandas(_encoder(schema), ddl)
            fail = _executor_error
        try:
            codes = codes.persist(StorageLevel.MEMORY_AND_DISK)
            n = int(codes.count())  # every row encoded (and so validated) once, in the executors
        except Exception as exc:  # noqa: BLE001
            codes.unpersist()
            raise fail(exc, "checking the table against the schema") from None
        finally:
            if raw is not None:
                self._spark.catalog.dropTempView(raw)
        self._codes = codes
        self._view = f"dpsynth_codes_{id(self):x}"
        codes.createOrReplaceTempView(self._view)
        self._n = n
        if n == 0:
            self.close()
            raise EncodingError("the table is empty")
        if source._stats() != stats:
            self.close()
            raise SourceChanged("the files changed while the table was being checked")
        self._stats = stats

    def __repr__(self) -> str:
        return "SparkRows(<private>)"

    def close(self) -> None:
        try:
            if self._codes is not None:
                self._spark.catalog.dropTempView(self._view)
                self._codes.unpersist()
        except Exception:  # noqa: BLE001
            pass
        self._codes = None

    def _pass(self, sets: list[tuple[int, ...]], sizes: list[int]) -> dict[tuple[int, ...], np.ndarray]:
        used = sorted({j for s in sets for j in s})
        if not used:
            return {(): np.array(self._n, dtype=np.int64)}
        if self._codes is None:
            raise SourceChanged("the table was closed; bind it again")
        if self._source.file_digests() != self._digests:
            raise SourceChanged("the table's files are not the ones the table was bound to; nothing is released")
        self.check_unchanged()
        alias = {j: f"k{j}" for j in used}
        gsets = ", ".join("(" + ", ".join(alias[j] for j in s) + ")" for s in sets) + ", ()"
        keys = ", ".join(f"coalesce({alias[j]}, -2) AS {alias[j]}" for j in used)
        # Spark's grouping_id follows the order of the grouping columns: listed first, in `used` order.
        cols = ", ".join(alias[j] for j in used)
        sql = (f"SELECT grouping_id({cols}) AS gid, {keys}, count(*) AS n "
               f"FROM {self._view} GROUP BY {cols} GROUPING SETS ({gsets})")
        try:
            rows = self._spark.sql(sql).collect()
        except Exception as exc:  # noqa: BLE001
            raise _executor_error(exc, "counting") from None
        self.check_unchanged()
        res = {"gid": np.array([r["gid"] for r in rows], dtype=np.int64),
               "n": np.array([r["n"] for r in rows], dtype=np.int64)}
        for j in used:
            res[alias[j]] = np.array([r[alias[j]] for r in rows], dtype=np.int64)
        return tables_from_grouping(res, used, sets, sizes, self._n)



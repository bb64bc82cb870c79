"""The private table: the only holder of raw rows; every method is a charged measurement."""

from .commitments import release_digest
from .custom import code_digest
from .dpsgd import AccessError, DPSGDSession
from .duckdb_source import DuckDBSource, EngineError, NeedsTableInMemory, SourceChanged
from .measurement import Measurement, NoisyMarginal
from .pate import PateSession
from .private_table import PrivateTable
from .rows import UnchargedAccess
from .sensitivity import SensitivityViolation
from .postgres_source import PostgresSource
from .query_source import DuckDBQuerySource
from .spark_source import SparkSource

__all__ = ["PrivateTable", "NoisyMarginal", "Measurement", "UnchargedAccess", "AccessError", "DPSGDSession",
           "PateSession", "SensitivityViolation", "release_digest", "code_digest", "DuckDBSource", "EngineError",
           "NeedsTableInMemory", "SourceChanged", "SparkSource", "PostgresSource", "DuckDBQuerySource"]

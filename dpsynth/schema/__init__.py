"""The public description of a table (see `Schema`, `Column`)."""

from .column import BINNED_KINDS, DISCRETE_KINDS, KINDS, Column
from .decode import OTHER
from .diagnose import Finding, diagnose
from .errors import EncodingError, SchemaError
from .schema import Schema

__all__ = ["Schema", "Column", "diagnose", "Finding", "SchemaError", "EncodingError", "OTHER", "KINDS", "DISCRETE_KINDS", "BINNED_KINDS"]

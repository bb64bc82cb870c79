"""Where a ledger lives: a SQLite file path, or a PostgreSQL URL.

    ledger.db                                          a SQLite file
    postgresql://user@host:5432/db                     ledger "default" in database db
    postgresql://user@host/db?sslmode=require#ledger=census_2030
                                                       ledger "census_2030" there
    postgres:///db?host=/run/postgresql#ledger=x       a Unix socket (libpq URL syntax)

The URL is libpq's (every libpq parameter may follow ``?``); the ledger's name,
which is not a libpq parameter, goes in the fragment as ``#ledger=NAME``.  Prefer
``PGPASSWORD`` or ``~/.pgpass`` to a password in the URL; `describe_location`
gives the form to print, with any password replaced by ``***``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .store import LedgerStore

__all__ = ["open_store", "is_postgres_url", "describe_location", "parse_postgres_url"]

_URL = re.compile(r"^postgres(?:ql)?://", re.I)
_MANGLED = re.compile(r"^postgres(?:ql)?:/(?!/)", re.I)


def is_postgres_url(location: object) -> bool:
    """True for ``postgresql://…`` and ``postgres://…`` strings (never for a Path)."""
    return isinstance(location, str) and _URL.match(location) is not None


def parse_postgres_url(url: str) -> tuple[str, str]:
    """(libpq DSN without the fragment, ledger name); ValueError for a malformed fragment."""
    from .postgres import DEFAULT_LEDGER_NAME

    dsn, sep, fragment = url.partition("#")
    if not sep:
        return dsn, DEFAULT_LEDGER_NAME
    key, eq, name = fragment.partition("=")
    if key != "ledger" or not eq:
        raise ValueError("the fragment of a PostgreSQL ledger URL names the ledger: #ledger=NAME")
    return dsn, name


def _check_not_mangled(text: str) -> None:
    if _MANGLED.match(text):
        raise ValueError(f"{text.split(':', 1)[0]}:/… is not a PostgreSQL URL (was it passed as a file path? "
                         "pathlib folds '//' into '/'): give the URL as a string, postgresql://…")


def open_store(location: str | os.PathLike | LedgerStore) -> LedgerStore:
    """The store at `location`: a PostgresLedgerStore for a PostgreSQL URL, else a
    SQLiteLedgerStore for the file path.  A store passed in is returned as it is."""
    if isinstance(location, LedgerStore):
        return location
    if is_postgres_url(location):
        from .postgres import PostgresLedgerStore

        dsn, name = parse_postgres_url(location)
        return PostgresLedgerStore(dsn, ledger=name)
    text = os.fspath(location)
    _check_not_mangled(str(text))
    from .sqlite import SQLiteLedgerStore

    return SQLiteLedgerStore(Path(text))


def describe_location(location: str | os.PathLike | LedgerStore) -> str:
    """`location` as it may be printed: a path as it is, a URL without its password."""
    if isinstance(location, LedgerStore):
        return str(getattr(location, "location", None) or getattr(location, "path", None) or location)
    if is_postgres_url(location):
        from .postgres import redact_dsn

        return redact_dsn(location)
    return str(os.fspath(location))

"""The team deployment: a privacy service that holds the governed datasets, their keys and
ledgers, and answers signed requests (`dpsynth serve CONFIG`; docs/team.md)."""

from .config import ConfigError, ServiceConfig, load_config, parse_config, sign_config_file
from .service import Service

__all__ = ["Service", "ServiceConfig", "ConfigError", "load_config", "parse_config", "sign_config_file",
           "create_app"]


def create_app(service: "Service"):
    """The ASGI application (FastAPI) over a running Service."""
    from .app import create_app as _create

    return _create(service)

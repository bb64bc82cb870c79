"""A researcher's side of a dpsynth privacy service: `ServiceClient` (signed requests,
retried under idempotency keys) and `RemoteTable` (the marginal path of a PrivateTable,
answered by the service).  Needs `httpx` (`pip install 'dpsynth[serve]'`)."""

from .client import ServiceClient, ServiceError
from .table import RemoteTable

__all__ = ["ServiceClient", "ServiceError", "RemoteTable"]

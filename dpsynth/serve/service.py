"""The running service: its configuration, datasets, state, jobs and limits, in one object
the HTTP layer (dpsynth.serve.app) calls into."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from accountant.keys import Ed25519PublicKey

from .config import ConfigError, ServiceConfig, parse_config, verify_config_signature
from .datasets import ServedDataset, open_dataset
from .jobs import JobManager
from .measurements import MeasurementService
from .ratelimit import RateLimiter
from .state import ServiceState

__all__ = ["Service"]

log = logging.getLogger("dpsynth.serve")


class Service:
    def __init__(self, config: ServiceConfig, officer: Ed25519PublicKey) -> None:
        self.officer = officer
        self.state = ServiceState(config.state)
        self.datasets: dict[str, ServedDataset] = {}
        try:
            for d in config.datasets:
                self.datasets[d.name] = open_dataset(d, officer, config.state / "witness")
        except BaseException:
            self.close()
            raise
        self._config = config
        self._config_lock = threading.Lock()
        self.measurements = MeasurementService(self.state)
        self.limiter = RateLimiter(config.requests_per_minute)
        self.failures = RateLimiter(60, burst=30)
        self.jobs = JobManager(self, config.workers)
        self.jobs.recover()

    @property
    def config(self) -> ServiceConfig:
        return self._config

    def replace_config(self, raw: bytes, signature: str) -> ServiceConfig:
        """A new configuration from the officer: signed by the pinned key, a higher version, the
        same datasets (a dataset is added or moved by restarting the service).  The roster and
        caps take effect for every request after this returns."""
        with self._config_lock:
            verify_config_signature(raw, signature, self.officer)
            new = parse_config(raw, self._config.base)
            if new.version <= self._config.version:
                raise ConfigError(f"service.version {new.version} is not above the running version "
                                  f"{self._config.version} (an older configuration cannot come back)")
            if new.datasets != self._config.datasets or new.state != self._config.state:
                raise ConfigError("datasets and service.state change only with a restart")
            if new.name != self._config.name or new.workers != self._config.workers:
                # The name is what every request is signed for; the worker pool is built at start.
                raise ConfigError("service.name and service.workers change only with a restart")
            from .startup import keep_config

            keep_config(self._config.state, raw, signature.encode("utf-8"))
            if new.requests_per_minute != self._config.requests_per_minute:
                self.limiter = RateLimiter(new.requests_per_minute)
            self._config = new
            log.info("configuration version %d in force (roster of %d)", new.version, len(new.people))
            return new

    def close(self) -> None:
        jobs = getattr(self, "jobs", None)
        if jobs is not None:
            jobs.shutdown()
        # Every dataset is closed even when one cannot be (its ledger vanished or was cut while
        # the service ran, and its gate says so on close): shutting down is not where that is
        # reported — every request since was refused, and the officer's log keeps it.
        for d in self.datasets.values():
            try:
                d.close()
            except Exception:  # noqa: BLE001 - logged; the other datasets still close
                logging.getLogger("dpsynth.serve").exception("closing dataset %s", d.name)
        self.state.close()

    @property
    def state_folder(self) -> Path:
        return self._config.state

    def dataset_for(self, name: str) -> ServedDataset | None:
        return self.datasets.get(name)

    def cap(self, person: Any, dataset: str) -> float | None:
        return self._config.cap(person, dataset)

"""Prometheus metrics: requests by route template, latency, and the database pool."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "crm_http_requests_total", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "crm_http_request_duration_seconds", "HTTP request latency", ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=self.registry,
        )

    def watch_pool(self, engine: AsyncEngine) -> None:
        self.registry.register(_PoolCollector(engine))


class _PoolCollector(Collector):
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pool = self.engine.sync_engine.pool
        for name, doc, fn in (
            ("crm_db_pool_size", "configured pool size", "size"),
            ("crm_db_pool_checked_out", "connections in use", "checkedout"),
            ("crm_db_pool_checked_in", "idle connections", "checkedin"),
            ("crm_db_pool_overflow", "connections beyond the pool size", "overflow"),
        ):
            value = getattr(pool, fn, None)
            if value is not None:
                yield GaugeMetricFamily(name, doc, value=value())

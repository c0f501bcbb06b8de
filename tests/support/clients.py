"""SDK clients that deliver quickly, for tests: what a test waits for happens in tens of
milliseconds instead of the seconds the production defaults allow."""

from __future__ import annotations

import dataclasses
from typing import Any

import xray_sdk
from xray_sdk.delivery.worker import DeliveryConfig

# Short flush interval, backoff and breaker cool-downs; the SDK's own max_attempts and
# breaker_threshold, since a test of retries says how many it needs.
FAST_DELIVERY: dict[str, Any] = {
    "flush_interval": 0.05,
    "backoff_base": 0.05,
    "backoff_max": 0.2,
    "breaker_cooldown": 0.2,
    "breaker_cooldown_max": 0.5,
}
# A short transport timeout ends a request held by a scripted server quickly.
FAST_CLIENT: dict[str, Any] = {"timeout": 0.5, "shutdown_timeout": 0.5}
# The SDK's default transport timeout, for clients of the real gunicorn server: on a busy
# two-core machine a large batch can take longer than the fast 0.5 s, and a request that
# times out is retried and costs an attempt.
REAL_SERVER_TIMEOUT = 3.0

_DELIVERY_FIELDS = {f.name for f in dataclasses.fields(DeliveryConfig)}


class ClientFactory:
    """Builds fast clients and closes every one of them in `close_all()`."""

    def __init__(self) -> None:
        # Strong references: a client a failing test still holds, or one it forgot, is closed
        # at teardown, so no delivery thread outlives its test.
        self._made: list[xray_sdk.Client] = []

    def __call__(self, url: str, **options: Any) -> xray_sdk.Client:
        """A client of `url`; each option overrides the fast setting of that name, whether it is
        a `Client` argument or a `DeliveryConfig` field."""
        delivery = {**FAST_DELIVERY, **{k: v for k, v in options.items() if k in _DELIVERY_FIELDS}}
        client_options = {**FAST_CLIENT, **{k: v for k, v in options.items() if k not in _DELIVERY_FIELDS}}
        client = xray_sdk.Client(url, delivery=DeliveryConfig(**delivery), **client_options)
        self._made.append(client)
        return client

    def close_all(self) -> None:
        """Close every client made; closing one a test already closed is harmless."""
        made, self._made = self._made, []
        for client in made:
            client.close()

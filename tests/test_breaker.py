"""The one circuit breaker that the SDK's delivery and the server's artifact writer share, on
its own, with a clock the test moves (no sleeping, no timing)."""

import threading

from xray_sdk.delivery.breaker import CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def breaker(**options):
    clock = Clock()
    return CircuitBreaker(clock=clock, **options), clock


def test_it_stays_closed_below_the_threshold():
    b, _ = breaker(threshold=3, cooldown=2.0)
    assert b.record_failure() == 0.0 and b.record_failure() == 0.0
    assert b.allows() and not b.is_open() and b.failures == 2


def test_it_opens_at_the_threshold_and_allows_again_after_the_cooldown():
    b, clock = breaker(threshold=3, cooldown=2.0)
    for _ in range(2):
        b.record_failure()
    assert b.record_failure() == 2.0
    assert b.is_open() and not b.allows() and b.remaining() == 2.0
    clock.now += 1.999
    assert not b.allows()
    clock.now += 0.001
    assert b.allows() and b.remaining() == 0.0


def test_each_failure_while_tripped_doubles_the_cooldown_up_to_the_ceiling():
    b, clock = breaker(threshold=1, cooldown=1.0, ceiling=5.0)
    opened = []
    for _ in range(5):
        opened.append(b.record_failure())
        clock.now += opened[-1]  # the cool-down passes; the next try fails again
    assert opened == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_a_success_closes_it_and_the_next_trip_starts_from_the_base_cooldown():
    b, _ = breaker(threshold=2, cooldown=1.0)
    for _ in range(4):
        b.record_failure()
    assert b.is_open()
    b.record_success()
    assert b.allows() and b.failures == 0
    assert b.record_failure() == 0.0  # below the threshold again
    assert b.record_failure() == 1.0


def test_a_cooldown_changed_after_construction_is_used_on_the_next_trip():
    b, _ = breaker(threshold=1, cooldown=2.0)
    b.cooldown = 0.2
    assert b.record_failure() == 0.2


def test_record_with_a_boolean_is_success_or_failure():
    b, _ = breaker(threshold=1, cooldown=1.0)
    b.record(False)
    assert b.is_open()
    b.record(True)
    assert b.allows()


def test_concurrent_failures_are_all_counted():
    b = CircuitBreaker(threshold=10**9)
    threads = [threading.Thread(target=lambda: [b.record_failure() for _ in range(2000)]) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert b.failures == 16_000

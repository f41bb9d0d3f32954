"""When to restart a crashed upstream: exponential backoff with jitter, and the crash-loop
rule. Pure logic on an injected clock and random source, so it is tested without sleeping."""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RestartPolicy:
    """How an upstream is watched and restarted (the gateway's `upstream_*` settings)."""

    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    backoff_factor: float = 2.0
    jitter: float = 0.2  # each delay is scaled by a random factor in [1 - jitter, 1 + jitter]
    crash_loop_after: int = 5
    crash_loop_window: float = 120.0
    crash_loop_retry: float = 300.0
    ping_interval: float = 30.0
    ping_timeout: float = 10.0
    missed_pings: int = 3
    idle_shutdown: float | None = None  # seconds without calls, then stop (None: never)
    keep_tools_when_down: bool = True
    lazy: bool = False
    # Bursts of list_changed notifications are folded into one catalog rebuild.
    list_changed_debounce: float = 0.2


class CrashHistory:
    """Crashes within the policy's window decide the next delay. K crashes in the window
    make the upstream crash-looping: it is then retried only every `crash_loop_retry`
    seconds, until one run stays up for a whole window."""

    def __init__(
        self,
        policy: RestartPolicy,
        *,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._policy = policy
        self._clock = clock
        self._rand = rand
        self._crashes: deque[float] = deque()
        self.looping = False
        # Every crash since the last healthy run (or forced restart): what a user is told.
        # The window's deque forgets the earlier ones once slow retries outlast the window.
        self.in_a_row = 0

    def crashed(self, uptime: float) -> float:
        """Record a crash of a run that lasted `uptime` seconds; the delay before the next
        start, in seconds."""
        policy = self._policy
        if uptime >= policy.crash_loop_window:
            self.reset()  # it had been healthy: earlier crashes say nothing now
        now = self._clock()
        self._crashes.append(now)
        self.in_a_row += 1
        while self._crashes and self._crashes[0] <= now - policy.crash_loop_window:
            self._crashes.popleft()
        if len(self._crashes) >= policy.crash_loop_after:
            self.looping = True
        if self.looping:
            base = policy.crash_loop_retry
        else:
            exponent = len(self._crashes) - 1
            base = min(policy.backoff_max, policy.backoff_initial * policy.backoff_factor**exponent)
        return base * (1 + policy.jitter * (2 * self._rand() - 1))

    @property
    def recent(self) -> int:
        """Crashes counted in the current window (as of the last crash)."""
        return len(self._crashes)

    def reset(self) -> None:
        self._crashes.clear()
        self.looping = False
        self.in_a_row = 0

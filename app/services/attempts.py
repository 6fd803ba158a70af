"""Limits on guessing a secret — console passwords, household-binding proof: one helper.

Two limits, kept in Redis (shared by every process) and counted exactly under concurrency:

- **Per requester** (a client address for console sign-in, a WeChat user for binding): at
  most ``limit`` failures within ``window`` seconds; past that, every attempt of that
  requester is refused (429) until the window ends. This is what stops a guesser.
- **Per target** (a username, an account number): failures on a target *slow it down*, they
  never lock it. After ``target_free`` failures on a target within ``target_window``, each
  further failure makes it wait ``target_delay`` × 2^(failures − free) seconds (at most
  ``target_delay_max``) — but the wait holds back only requesters that have themselves
  failed recently. Someone with no recent failure (the owner with the right password or
  proof) is never held up by strangers' failures, so strangers cannot lock anybody out;
  a guesser fails by definition and is slowed on every target it touches.

The check and the count are one step. An attempt is *reserved* atomically (one Lua script:
read the requester's count, refuse or increment) before the secret is checked, so 40
concurrent guesses against a limit of 8 evaluate exactly 8. The reservation then becomes a
failure (:meth:`Attempt.failed`), or is given back: on success together with the
requester's earlier failures on that target (:meth:`Attempt.succeeded`), on an unrelated
error alone. :meth:`Attempts.clear_target` (an admin unlocking a username) forgets a
target's failures, including them in the counts of the requesters that made them.

Time is Redis's: windows are key expiries, waits are keys with a PX expiry.
"""
from __future__ import annotations

import hashlib
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from app.errors import TooManyAttemptsError

# KEYS: requester count, target wait.  ARGV: limit, window (ms).
# → {0, 0} reserved; {1, ms} requester over its limit; {2, ms} target slowed for this requester.
_RESERVE = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used >= tonumber(ARGV[1]) then
  return {1, redis.call('PTTL', KEYS[1])}
end
if used > 0 then
  local wait = redis.call('PTTL', KEYS[2])
  if wait > 0 then return {2, wait} end
end
redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return {0, 0}
"""

# KEYS: target count, target wait (its value: the wait in ms), target's requesters (hash).
# ARGV: requester, free, delay (ms), max delay (ms), target window (ms).  → failures on the target
_FAIL = """
local n = redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[5]) end
redis.call('HINCRBY', KEYS[3], ARGV[1], 1)
redis.call('PEXPIRE', KEYS[3], ARGV[5])
local free = tonumber(ARGV[2])
if n >= free then
  local wait = math.min(tonumber(ARGV[3]) * 2 ^ (n - free), tonumber(ARGV[4]))
  wait = math.floor(wait)
  redis.call('SET', KEYS[2], wait, 'PX', wait)
end
return n
"""

# KEYS: requester count, target's requesters, target count, target wait.
# ARGV: requester, 1 to forgive its failures on the target too (its own typos: they leave
# the requester's count and the target's, and a wait they alone caused ends), else 0.
_RELEASE = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local back = 1
if ARGV[2] == '1' then
  local mine = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
  redis.call('HDEL', KEYS[2], ARGV[1])
  back = back + mine
  local failures = tonumber(redis.call('GET', KEYS[3]) or '0')
  local left = math.max(failures - mine, 0)
  if mine > 0 and failures > 0 then redis.call('DECRBY', KEYS[3], failures - left) end
  if left < tonumber(ARGV[3]) then redis.call('DEL', KEYS[4]) end
end
back = math.min(used, back)
if back > 0 then redis.call('DECRBY', KEYS[1], back) end
return back
"""

# KEYS: target count, target wait, target's requesters, then the requesters' counts.
# ARGV: how many failures each of those requesters made on the target.
_CLEAR_TARGET = """
for i = 4, #KEYS do
  local used = tonumber(redis.call('GET', KEYS[i]) or '0')
  local back = math.min(used, tonumber(ARGV[i - 3]))
  if back > 0 then redis.call('DECRBY', KEYS[i], back) end
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return #KEYS - 3
"""


@dataclass(frozen=True)
class AttemptPolicy:
    name: str                  # Redis keys: attempts:<name>:...
    limit: int                 # failures per requester ...
    window: int                # ... within this many seconds
    target_free: int           # failures on a target before it slows down
    target_delay: int          # seconds of the first wait, doubled with each further failure
    target_delay_max: int
    target_window: int         # how long a target remembers its failures
    requester_message: str     # 429 for a requester over its limit
    target_message: str        # 429 while a target makes this requester wait; {wait} is filled in


def _wait_text(ms: int) -> str:
    seconds = max(1, -(-ms // 1000))
    if seconds < 60:
        return f"{seconds}秒"
    return f"{-(-seconds // 60)}分钟"


def _part(value: str) -> str:
    """A key part: short values as they are, long ones (anything a client sends) hashed."""
    value = str(value)
    return value if len(value) <= 64 else "h:" + hashlib.sha256(value.encode()).hexdigest()


class Attempt:
    """One reserved attempt: say how it ended with :meth:`failed` or :meth:`succeeded`."""

    def __init__(self, attempts: "Attempts", requester: str, target: str):
        self._attempts, self.requester, self.target = attempts, requester, target
        self.outcome: str | None = None

    def failed(self) -> int:
        """The secret was wrong: the reservation stays as a failure; returns the target's
        failures within its window."""
        self.outcome = "failed"
        return self._attempts._failed(self.requester, self.target)

    def succeeded(self) -> None:
        """The secret was right: give the reservation back, and forgive this requester's
        earlier failures on this target (typos before the right password) — in its own
        count and in the target's."""
        self.outcome = "succeeded"
        self._attempts._release(self.requester, self.target, forgive=True)


class Attempts:
    """The attempt limits of one ``AttemptPolicy`` on one Redis."""

    def __init__(self, redis, policy: AttemptPolicy):
        self.redis, self.policy = redis, policy
        self._reserve = redis.register_script(_RESERVE)
        self._fail = redis.register_script(_FAIL)
        self._give_back = redis.register_script(_RELEASE)
        self._clear = redis.register_script(_CLEAR_TARGET)

    # keys: attempts:<policy>:requester:<who>, attempts:<policy>:target:<what>[:wait|:who]
    def _requester_key(self, requester: str) -> str:
        return f"attempts:{self.policy.name}:requester:{_part(requester)}"

    def _target_keys(self, target: str) -> list[str]:
        base = f"attempts:{self.policy.name}:target:{_part(target)}"
        return [base, base + ":wait", base + ":who"]

    @contextmanager
    def attempt(self, *, requester: str, target: str) -> Iterator[Attempt]:
        """Reserve an attempt (or raise ``TooManyAttemptsError``) for the block, which checks
        the secret and calls ``failed()`` or ``succeeded()``. A block left without either (an
        unrelated error) gives the reservation back."""
        attempt = self.reserve(requester=requester, target=target)
        try:
            yield attempt
        finally:
            if attempt.outcome is None:
                self._release(requester, target, forgive=False)

    def reserve(self, *, requester: str, target: str) -> Attempt:
        p = self.policy
        state, wait_ms = self._reserve(
            keys=[self._requester_key(requester), self._target_keys(target)[1]],
            args=[p.limit, p.window * 1000])
        if state == 1:
            raise TooManyAttemptsError(p.requester_message)
        if state == 2:
            raise TooManyAttemptsError(p.target_message.format(wait=_wait_text(int(wait_ms))))
        return Attempt(self, requester, target)

    def _failed(self, requester: str, target: str) -> int:
        p = self.policy
        return int(self._fail(keys=self._target_keys(target),
                              args=[_part(requester), p.target_free, p.target_delay * 1000,
                                    p.target_delay_max * 1000, p.target_window * 1000]))

    def _release(self, requester: str, target: str, *, forgive: bool) -> None:
        count_key, wait_key, who_key = self._target_keys(target)
        self._give_back(keys=[self._requester_key(requester), who_key, count_key, wait_key],
                        args=[_part(requester), 1 if forgive else 0, self.policy.target_free])

    def clear_target(self, target: str) -> None:
        """Forget the failures on ``target`` (an admin's unlock): its wait ends, and the
        requesters that made them get those failures back."""
        count_key, wait_key, who_key = self._target_keys(target)
        who = {k.decode(): int(v) for k, v in self.redis.hgetall(who_key).items()}
        names = list(who)
        keys = [count_key, wait_key, who_key] + [f"attempts:{self.policy.name}:requester:{n}" for n in names]
        self._clear(keys=keys, args=[who[n] for n in names])

    def failures_on(self, targets) -> dict[str, int]:
        """Failures within the target window, per target (those with none are left out)."""
        targets = [t for t in targets if t is not None]
        if not targets:
            return {}
        counts = self.redis.mget([self._target_keys(t)[0] for t in targets])
        return {t: int(n) for t, n in zip(targets, counts) if n is not None and int(n) > 0}

    def failures_of(self, requester: str) -> int:
        """Failures (and attempts in flight) of a requester within its window."""
        return int(self.redis.get(self._requester_key(requester)) or 0)

"""The one attempt limiter (app/services/attempts.py): exact under concurrency, a hard
limit per requester, and per target a slow-down for those who failed — never a lock-out."""
from __future__ import annotations

import threading

import pytest

from app.errors import TooManyAttemptsError
from app.services.attempts import AttemptPolicy, Attempts

POLICY = AttemptPolicy(name="test", limit=8, window=900, target_free=3, target_delay=30, target_delay_max=600,
                       target_window=900, requester_message="requester", target_message="target {wait}")


@pytest.fixture()
def attempts(redis):
    return Attempts(redis, POLICY)


def _guess(attempts, requester, target, right=False) -> str:
    try:
        with attempts.attempt(requester=requester, target=target) as attempt:
            if right:
                attempt.succeeded()
                return "ok"
            attempt.failed()
            return "wrong"
    except TooManyAttemptsError as exc:
        return exc.message


def test_forty_concurrent_guesses_against_a_limit_of_eight_evaluate_eight(attempts):
    start = threading.Barrier(40, timeout=30)
    evaluated, outcomes, lock = [], [], threading.Lock()

    def guess(i):
        start.wait()
        try:
            with attempts.attempt(requester="203.0.113.9", target=f"user{i}") as attempt:
                with lock:
                    evaluated.append(i)
                start_of_check.wait()          # every reserved attempt is in flight at once
                attempt.failed()
                outcome = "wrong"
        except TooManyAttemptsError:
            outcome = "refused"
        with lock:
            outcomes.append(outcome)

    start_of_check = threading.Barrier(8, timeout=30)   # breaks (and fails the test) if not exactly 8 get in
    threads = [threading.Thread(target=guess, args=(i,), daemon=True) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(evaluated) == 8
    assert sorted(outcomes) == ["refused"] * 32 + ["wrong"] * 8
    assert attempts.failures_of("203.0.113.9") == 8


def test_a_strangers_failures_never_stop_someone_who_has_not_failed(attempts):
    for _ in range(POLICY.target_free):
        assert _guess(attempts, "stranger", "owner-target") == "wrong"
    assert _guess(attempts, "stranger", "owner-target").startswith("target")        # slowed there
    for i in range(POLICY.limit - POLICY.target_free):
        assert _guess(attempts, "stranger", f"target{i}") == "wrong"
    assert _guess(attempts, "stranger", "yet-another-target") == "requester"          # stopped everywhere
    assert _guess(attempts, "owner", "owner-target", right=True) == "ok"


def test_a_target_slows_down_requesters_that_failed_with_growing_waits(attempts, redis):
    waits = []
    for i in range(POLICY.target_free + 3):
        assert _guess(attempts, f"guesser{i}", "target") == "wrong"
        waits.append(int(redis.get("attempts:test:target:target:wait") or 0))
    # No wait before target_free failures, then 30 s, 60 s, 120 s, 240 s (never a lock).
    assert waits == [0] * (POLICY.target_free - 1) + [30_000, 60_000, 120_000, 240_000]
    assert 0 < redis.pttl("attempts:test:target:target:wait") <= 240_000
    # Those who failed wait (and are told how long); a fresh requester is evaluated at once.
    assert _guess(attempts, "guesser0", "target", right=True).startswith("target ")
    assert _guess(attempts, "fresh", "target") == "wrong"


def test_waits_stop_growing_at_the_maximum(attempts, redis):
    for i in range(12):
        _guess(attempts, f"guesser{i}", "target")
    assert int(redis.get("attempts:test:target:target:wait")) == POLICY.target_delay_max * 1000


def test_success_gives_back_the_reservation_and_forgives_the_requesters_typos(attempts, redis):
    assert _guess(attempts, "stranger", "me") == "wrong"
    for _ in range(POLICY.target_free - 1):
        assert _guess(attempts, "staff-pc", "me") == "wrong"
    assert attempts.failures_of("staff-pc") == POLICY.target_free - 1
    assert attempts.failures_on(["me"]) == {"me": POLICY.target_free}
    assert redis.exists("attempts:test:target:me:wait")
    assert _guess(attempts, "staff-pc", "me", right=True).startswith("target ")  # waits like anyone who failed
    redis.delete("attempts:test:target:me:wait")                                # (the wait is over)
    assert _guess(attempts, "staff-pc", "me", right=True) == "ok"
    # Its own typos are gone from its count and from the target's; the stranger's stays.
    assert attempts.failures_of("staff-pc") == 0
    assert attempts.failures_on(["me"]) == {"me": 1}
    assert not redis.exists("attempts:test:target:me:wait")


def test_an_error_while_checking_gives_the_reservation_back(attempts):
    with pytest.raises(RuntimeError):
        with attempts.attempt(requester="pc", target="me"):
            raise RuntimeError("database went away")
    assert attempts.failures_of("pc") == 0


def test_clearing_a_target_forgets_its_failures_and_gives_them_back(attempts):
    for _ in range(3):
        _guess(attempts, "pc", "locked-user")
    _guess(attempts, "pc", "other-user")
    assert attempts.failures_on(["locked-user", "other-user", "nobody"]) == {"locked-user": 3, "other-user": 1}
    attempts.clear_target("locked-user")
    assert attempts.failures_on(["locked-user", "other-user"]) == {"other-user": 1}
    assert attempts.failures_of("pc") == 1          # the failures on other-user stay


def test_long_or_odd_names_make_bounded_keys(attempts, redis):
    assert _guess(attempts, "x" * 5000, "名字" * 1000) == "wrong"
    assert all(len(key) < 200 for key in redis.keys("attempts:test:*"))


def test_guessing_link_codes_is_stopped_after_five_wrong_ones(db, make_wechat_user, redis):
    from app.errors import ValidationError
    from app.services import identity

    owner = make_wechat_user()
    code = identity.issue_link_code(owner, redis)
    guesser = make_wechat_user(oa_openid=None, mp_openid="mp-guesser")
    wrong = [c for c in ("000000", "111111", "222222", "333333", "444444", "555555") if c != code]
    for guess in wrong[:5]:
        with pytest.raises(ValidationError):
            identity.link_with_code(guesser, guess, redis)
    with pytest.raises(TooManyAttemptsError):
        identity.link_with_code(guesser, code, redis)     # even the right one now
    assert redis.exists(identity._code_key(code))         # and the code was not spent

import pytest
from redis.exceptions import LockError

from jobs import cron


def test_every_periodic_job_is_registered_with_a_stable_name(redis):
    scheduler = cron.build_scheduler(redis)
    names = [job.name for job in scheduler.get_jobs()]
    assert names == [path for path, _, _ in cron.PERIODIC]
    assert "jobs.outbox.sweep_outbox" in names


def test_only_one_scheduler_leads_at_a_time(redis):
    host_a, host_b = cron.leader_lock(redis), cron.leader_lock(redis)
    assert cron.try_lead(host_a)
    assert not cron.try_lead(host_b)
    redis.expire(cron.LEADER_KEY, 5)
    assert cron.try_lead(host_a)           # the leader keeps its lock, renewed
    assert redis.ttl(cron.LEADER_KEY) > 5
    redis.delete(cron.LEADER_KEY)          # the leader died and its lock expired
    assert cron.try_lead(host_b)
    assert not host_a.owned()              # the old leader can neither renew nor release it
    with pytest.raises(LockError):
        host_a.reacquire()
    with pytest.raises(LockError):
        host_a.release()
    assert host_b.owned()

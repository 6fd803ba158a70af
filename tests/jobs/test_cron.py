from jobs import cron


def test_every_periodic_job_is_registered_with_a_stable_name(redis):
    scheduler = cron.build_scheduler(redis)
    names = [job.name for job in scheduler.get_jobs()]
    assert names == [path for path, _, _ in cron.PERIODIC]
    assert "jobs.outbox.sweep_outbox" in names


def test_only_one_scheduler_leads_at_a_time(redis):
    assert cron.try_lead(redis, "host-a")
    assert not cron.try_lead(redis, "host-b")
    assert cron.try_lead(redis, "host-a")  # the leader keeps its lock
    redis.delete(cron.LEADER_KEY)          # the leader died and its lock expired
    assert cron.try_lead(redis, "host-b")

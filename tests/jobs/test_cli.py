"""`flask jobs`: staff see failed jobs and re-run them; broadcast progress and send rate."""
from app.queue import get_queue
from app.services import announcements as svc


def test_failed_jobs_are_listed_and_can_be_requeued(runner, redis, worker):
    job = get_queue("default").enqueue("tests.jobs.handlers.remember", job_id="broken-job")  # missing arguments
    worker()
    listed = runner.invoke(args=["jobs", "failed"])
    assert listed.exit_code == 0, listed.output
    assert "broken-job" in listed.output and "TypeError" in listed.output and "1 failed job(s)" in listed.output
    stats = runner.invoke(args=["jobs", "stats"])
    assert "default" in stats.output and "outbox" in stats.output

    requeued = runner.invoke(args=["jobs", "requeue", "broken-job"])
    assert "requeued 1 job(s)" in requeued.output
    assert get_queue("default").job_ids == [job.id]
    assert "0 failed job(s)" in runner.invoke(args=["jobs", "failed"]).output


def test_requeue_needs_ids_or_all(runner, redis):
    result = runner.invoke(args=["jobs", "requeue"])
    assert result.exit_code != 0 and "--all" in result.output


def test_progress_and_rate_commands(runner, db, redis):
    ann = svc.compose_announcement(title="测试公告", body="内容")
    db.session.commit()
    out = runner.invoke(args=["jobs", "progress", str(ann.id)]).output
    assert "draft" in out and "total 0" in out
    assert runner.invoke(args=["jobs", "progress", "999"]).exit_code != 0
    assert "1200 per minute" in runner.invoke(args=["jobs", "rate", "1200"]).output
    assert "6000 per minute" in runner.invoke(args=["jobs", "rate", "--reset"]).output

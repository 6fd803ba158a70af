"""The demo city fills the leader dashboard: crews located near their stations, today's calls."""
from __future__ import annotations

from app.demo import data
from app.demo.seed import seed_demo
from app.models import Station
from app.services import metrics


def test_demo_crews_have_positions_near_their_station_and_today_has_calls(clock, db):
    seed_demo(200, now=clock.utcnow())
    db.session.commit()
    summary = metrics.dashboard_summary(clock.utcnow())
    assert all(c["last_location"] is not None for c in summary["crews"])
    stations = {s.name: data.STATION_POSITIONS[s.code] for s in db.session.query(Station)}
    for crew in summary["crews"]:
        for person in crew["people"]:
            # within about a kilometre of one of the demo stations, labelled with a place
            assert any(abs(person["latitude"] - lat) < 0.01 and abs(person["longitude"] - lng) < 0.01
                       for lat, lng in stations.values())
            assert person["location"].endswith("号楼附近")
    calls = summary["calls_today"]
    assert calls["queue"] == 2 and calls["answered"] > 0 and calls["total"] >= calls["answered"] + calls["missed"] + 2

"""The availability cache can't be used as a weapon: what it keeps does not multiply with the
viewer's zone, and one answer has a bounded size."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import REGISTRY

from tests.api.conftest import Api
from tests.api.helpers import create_provider, hours

EVERY_DAY = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# A spread of offsets, half-hour and quarter-hour ones and both sides of the date line.
SOME_ZONES = [
    "UTC", "America/New_York", "America/Los_Angeles", "America/St_Johns", "America/Sao_Paulo",
    "Europe/London", "Europe/Berlin", "Asia/Kolkata", "Asia/Kathmandu", "Asia/Tokyo",
    "Australia/Adelaide", "Australia/Sydney", "Pacific/Auckland", "Pacific/Chatham",
    "Pacific/Kiritimati", "Pacific/Pago_Pago", "Pacific/Honolulu", "Asia/Tehran",
    "Africa/Cairo", "America/Anchorage",
]  # fmt: skip


def cache_bytes(api: Api, provider: str) -> int:
    """Bytes of every cached availability value of one provider (its counters aside)."""
    redis = api.client.app.state.runtime.cache_redis

    async def measure() -> int:
        total = 0
        async for key in redis.scan_iter(match=f"booking:availability:*{provider}*", count=1000):
            name = key.decode() if isinstance(key, bytes) else key
            if ":version:" not in name:
                total += await redis.strlen(key)
        return int(total)

    result: int = api.client.blocking_portal.call(measure)
    return result


def zones(count: int) -> list[str]:
    from zoneinfo import available_timezones

    rest = sorted(
        z for z in available_timezones() if "/" in z and not z.startswith(("posix", "right", "Etc"))
    )
    picked = list(SOME_ZONES)
    for zone in rest:
        if len(picked) == count:
            break
        if zone not in picked:
            picked.append(zone)
    return picked


def availability(api: Api, provider: str, zone: str | None = None, **query: str) -> Any:
    headers = {**api.user, **({"Timezone": zone} if zone else {})}
    params = {("from" if k == "from_" else k): v for k, v in query.items()}
    return api.get(f"/v1/providers/{provider}/availability", params=params, headers=headers)


def test_a_hundred_viewer_zones_grow_the_cache_by_a_few_answers_at_most(api: Api) -> None:
    provider = create_provider(
        api, weekly_schedule=hours(EVERY_DAY, ("09:00", "17:00")), slot_minutes=15
    )
    first = availability(api, provider, None, from_="2026-11-01", to="2027-01-01")
    assert first.status_code == 200, first.text
    one_answer = cache_bytes(api, provider)
    assert one_answer > 0
    viewers = zones(100)
    assert len(set(viewers)) == 100
    starts: set[str] = set()
    for zone in viewers:
        response = availability(api, provider, zone, from_="2026-11-01", to="2027-01-01")
        assert response.status_code == 200, (zone, response.text)
        assert response.json()["timezone"] == zone
        starts.add(response.json()["slots"][0]["start"])
    assert len(starts) > 20  # really shown in many zones
    grown = cache_bytes(api, provider)
    print(f"cache: {one_answer} bytes after one answer, {grown} after 100 zones")
    # At most the two extra dates each side a far-off zone reaches, not 100 answers.
    assert grown <= 2 * one_answer, f"{grown} bytes cached after 100 zones, one answer {one_answer}"


def test_every_zone_sees_the_same_instants(api: Api) -> None:
    provider = create_provider(api, weekly_schedule=hours(EVERY_DAY, ("08:00", "12:00")))
    from datetime import datetime

    def instants(zone: str) -> list[datetime]:
        response = availability(api, provider, zone, from_="2026-11-30", to="2026-12-06")
        assert response.status_code == 200, response.text
        return [datetime.fromisoformat(s["start"]) for s in response.json()["slots"]]

    # The same real-time window is seven different calendar weeks in these zones, but inside
    # the middle of it, every zone must see exactly the same instants.
    seen = {zone: instants(zone) for zone in ("Pacific/Kiritimati", "UTC", "Pacific/Pago_Pago")}
    utc = seen["UTC"]
    middle = [s for s in utc if utc[0].day + 1 < s.day < utc[-1].day - 1]
    for zone, found in seen.items():
        assert [s for s in found if s in set(middle)] == middle, zone
        for start in found:
            assert (
                start.utcoffset()
                == start.astimezone(__import__("zoneinfo").ZoneInfo(zone)).utcoffset()
            )


def test_an_answer_past_the_slot_limit_is_422_saying_to_narrow_the_range(api: Api) -> None:
    provider = create_provider(
        api, timezone="UTC", weekly_schedule=hours(EVERY_DAY, ("00:00", "24:00")), slot_minutes=1
    )
    too_many = availability(api, provider, "UTC", from_="2026-11-01", to="2027-01-01")
    assert too_many.status_code == 422, too_many.text[:300]
    assert too_many.headers["content-type"].startswith("application/problem+json")
    assert "narrow the range" in too_many.json()["detail"]
    assert "10000" in too_many.json()["detail"]
    six_days = availability(api, provider, "UTC", from_="2026-11-01", to="2026-11-06")
    assert six_days.status_code == 200
    assert len(six_days.json()["slots"]) == 6 * 1440


def _counted(result: str) -> float:
    return REGISTRY.get_sample_value("availability_cache_total", {"result": result}) or 0.0


def test_hits_and_misses_are_counted(api: Api) -> None:
    provider = create_provider(api)
    misses, hits = _counted("miss"), _counted("hit")
    assert availability(api, provider, date="2026-12-01").status_code == 200
    assert _counted("miss") == misses + 1
    assert availability(api, provider, "Asia/Tokyo", date="2026-12-02").status_code == 200
    assert availability(api, provider, date="2026-12-01").status_code == 200
    assert _counted("hit") >= hits + 1


def test_cache_stats_shows_the_cache_growing(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    import json as jsonlib

    from cli.main import main

    runtime = api.client.app.state.runtime
    redis_url = str(runtime.settings.cache_redis_url)

    def stats() -> dict[str, int]:
        if api.database.backend != "postgresql":
            # The SQLite variant's Redis is fakeredis inside the app: measure it in place.
            from infra.availability_cache import RedisDayStore

            keys, used = api.client.blocking_portal.call(
                RedisDayStore(runtime.cache_redis).footprint
            )
            return {"keys": keys, "bytes": used}
        capsys.readouterr()
        with pytest.MonkeyPatch.context() as env:
            env.setenv("REDIS_URL", redis_url)
            env.delenv("CACHE_REDIS_URL", raising=False)
            assert main(["cache-stats", "--json"]) == 0
        found: dict[str, int] = jsonlib.loads(capsys.readouterr().out.strip().splitlines()[-1])
        return found

    before = stats()
    provider = create_provider(api)
    assert availability(api, provider, from_="2026-11-02", to="2026-11-08").status_code == 200
    after = stats()
    assert after["keys"] >= before["keys"] + 7
    assert after["bytes"] > before["bytes"]

"""The camera registry: sources ffmpeg could misread are refused, credentials never leave the
server, and the cameras near an incident are offered to the dispatcher."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from app.config import ConfigError, load
from tests.conftest import config_text_for_tests
from tests.helpers import Liandong
from video.cameras.spec import scrub

HALL = {"lon": 111.2905, "lat": 30.7008}  # a service hall near the demo's usual incident point


def camera(code: str = "hall-w1", **changes: Any) -> dict[str, Any]:
    return {"code": code, "name": "行政服务中心 1号窗口", "department": "行政服务中心", "window": "1",
            "location": HALL, "main_url": "rtsp://viewer:s3cret-pw@10.20.30.40:554/Streaming/Channels/101",
            "sub_url": "rtsp://viewer:s3cret-pw@10.20.30.40:554/Streaming/Channels/102", **changes}


async def test_a_registered_camera_never_shows_its_credentials(liandong: Liandong,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    status, created = await liandong.call("POST", "/api/cameras", camera(), as_user="supervisor")
    assert status == 201
    assert created["main_url"] == "rtsp://***@10.20.30.40:554/Streaming/Channels/101"
    status, listed = await liandong.call("GET", "/api/cameras", as_user="dispatcher")
    status, one = await liandong.call("GET", f"/api/cameras/{created['id']}", as_user="dispatcher")
    everything = repr(created) + repr(listed) + repr(one) + caplog.text
    assert "s3cret-pw" not in everything and "viewer" not in everything
    assert [c["code"] for c in listed] == ["hall-w1"] and one["window"] == "1"


@pytest.mark.parametrize("url, shown", [
    ("rtsp://admin:pw@[fe80::1]:554/Streaming/Channels/101", "rtsp://***@[fe80::1]:554/Streaming/Channels/101"),
    ("rtsp://[2001:db8::5]:554/live?user=admin&pwd=Hik_12345&channel=1&subtype=0",
     "rtsp://[2001:db8::5]:554/live?user=***&pwd=***&channel=1&subtype=0"),
    ("rtsp://10.0.0.9:554/user=admin_password=ab_cd_channel=1_stream=0.sdp",
     "rtsp://10.0.0.9:554/user=***_password=***_channel=1_stream=0.sdp"),
    ("http://10.0.0.7/video.cgi?loginuse=admin&loginpas=x%40y&resolution=32",
     "http://10.0.0.7/video.cgi?loginuse=***&loginpas=***&resolution=32"),
])
async def test_credentials_anywhere_in_a_url_stay_on_the_server(liandong: Liandong, url: str, shown: str) -> None:
    status, created = await liandong.call("POST", "/api/cameras", camera(main_url=url, sub_url=""),
                                          as_user="supervisor")
    assert (status, created["main_url"]) == (201, shown)
    status, listed = await liandong.call("GET", "/api/cameras", as_user="dispatcher")
    assert [c["main_url"] for c in listed] == [shown]


def test_a_programs_complaint_loses_the_credentials_wherever_it_repeats_them() -> None:
    url = "rtsp://[2001:db8::5]:554/live?user=admin&pwd=Hik_12345&channel=1"
    complaint = f"{url}: 401 Unauthorized\nrtsp://[2001:db8::5]/live?pwd=Hik_12345 retried as admin"
    assert scrub(complaint, url) == ("rtsp://[2001:db8::5]:554/live?user=***&pwd=***&channel=1: 401 Unauthorized\n"
                                     "rtsp://[2001:db8::5]/live?pwd=*** retried as ***")


@pytest.mark.parametrize("url, reason", [
    ("-i /etc/passwd", "starts with '-'"),
    ("concat:/etc/passwd|/etc/shadow", "'|'"),
    ("subfile,,start,0,end,0,,:/etc/passwd", "use rtsp"),
    ("file:///etc/passwd", "media folder"),
    ("rtsp://10.0.0.1/live -vf drawtext", "spaces"),
    ("pipe:0", "use rtsp"),
    ("rtsp:///no-host", "needs a host"),
    ("http://host:99999/video.mjpg", "port"),
])
async def test_a_source_ffmpeg_could_misread_is_refused(liandong: Liandong, url: str, reason: str) -> None:
    status, body = await liandong.call("POST", "/api/cameras", camera(main_url=url), as_user="supervisor")
    assert (status, body["error"]["field"]) == (422, "main_url"), body
    assert reason in body["error"]["message"]
    assert (await liandong.call("GET", "/api/cameras", as_user="supervisor"))[1] == []


async def test_a_region_of_interest_outside_the_frame_or_bad_hours_are_refused(liandong: Liandong) -> None:
    for change, field in (({"roi": {"x": 0.8, "y": 0.1, "width": 0.5, "height": 0.5}}, "roi"),
                          ({"roi": {"x": -0.1, "y": 0.1, "width": 0.5, "height": 0.5}}, "roi.x"),
                          ({"opening_hours": {"periods": ["17:30-08:30"]}}, "opening_hours.periods[0]"),
                          ({"location": {"lon": 111.29}}, "location.lat")):
        status, body = await liandong.call("POST", "/api/cameras", camera(**change), as_user="supervisor")
        assert (status, body["error"]["field"]) == (422, field), body


async def test_the_cameras_near_an_incident_are_offered(liandong: Liandong) -> None:
    await liandong.call("POST", "/api/cameras", camera(), as_user="supervisor")
    await liandong.call("POST", "/api/cameras", camera("far-away", location={"lon": 111.79, "lat": 30.82}),
                        as_user="supervisor")
    fire = await liandong.report("201", 3, 111.29, 30.70)
    status, support = await liandong.call("GET", f"/api/incidents/{fire['id']}/decision-support",
                                          as_user="dispatcher")
    assert status == 200
    assert [c["code"] for c in support["cameras"]] == ["hall-w1"]
    assert 50 < support["cameras"][0]["distance_m"] < 150 and "main_url" not in support["cameras"][0]


def test_a_configured_camera_with_a_bad_source_stops_start_up(tmp_path: Path) -> None:
    text = config_text_for_tests()
    text += ('\n[[cameras]]\ncode = "hall-w2"\nname = "2号窗口"\ndepartment = "行政服务中心"\nwindow = "2"\n'
             'location = { lon = 111.29, lat = 30.70 }\nmain_url = "concat:/etc/passwd"\n')
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"cameras\[0\]\.main_url"):
        load(path, environ={})

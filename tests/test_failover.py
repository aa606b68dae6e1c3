"""Three nodes behind HAProxy, and one of them is killed outright under load: its terminals come back
through the balancer to the others and miss nothing, its cameras are recording again on another node,
escalations due meanwhile fire, and no acknowledgement the server confirmed is lost."""

from __future__ import annotations

from pathlib import Path

from bench import failover

RESUME_LIMIT_S = 5.0
RECLAIM_LIMIT_S = 15.0


async def test_killing_a_node_under_load_costs_no_ticket_no_terminal_and_no_camera(database_url: str,
                                                                                  tmp_path: Path) -> None:
    figures = await failover.run(terminals=30, per_subcentre=3, rate=5, cameras=2, before_s=6, after_s=12,
                                 database_url=database_url, workdir=tmp_path)
    print(figures)
    # The victim had work to lose: terminals (leastconn spreads them), cameras, tickets after the kill.
    assert figures["terminals_cut_off"] >= 1, figures
    assert figures["victim_cameras"] >= 1, figures
    assert sorted(figures["cameras_by_node"].values()) == [0, 1, 1], figures  # the nodes share the cameras
    assert figures["resumed_delivery_s_max"] is not None, figures

    assert figures["terminal_resume_s_max"] <= RESUME_LIMIT_S, figures
    assert figures["resumed_delivery_s_max"] <= RESUME_LIMIT_S, figures
    assert figures["lost"] == 0, figures
    assert figures["duplicates"] == 0, figures
    assert figures["camera_reclaim_s"] <= RECLAIM_LIMIT_S, figures
    assert figures["camera_recording_s"] <= RECLAIM_LIMIT_S, figures
    assert figures["acknowledged"] > 0 and figures["acknowledged_lost"] == 0, figures
    assert figures["escalations_after_kill"] > 0 and figures["escalations_overdue"] == 0, figures
    assert figures["failed_posts"] == 0 and figures["duplicate_incidents"] == 0, figures

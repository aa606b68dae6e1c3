"""Which departments and sub-centres an incident goes to, by type, severity and place."""

from __future__ import annotations

import pytest

from app.config import Config, load
from command.demo import demo_subcentres
from dispatch.routing import Router
from dispatch.taxonomy import Severity
from gis.jurisdictions import Jurisdiction, Jurisdictions

XILING = (111.29, 30.70)


Setup = tuple[Router, Jurisdictions, dict[int, str]]


@pytest.fixture(scope="module")
def setup() -> Setup:
    config: Config = load(environ={})
    demo = demo_subcentres()
    index = Jurisdictions(Jurisdiction(i, s.department, s.area) for i, s in enumerate(demo, start=1))
    return (Router(config.taxonomy, config.departments, config.severity_rules), index,
            {i: s.code for i, s in enumerate(demo, start=1)})


def route(setup: Setup, type_code: str, severity: Severity,
          at: tuple[float, float] = XILING) -> list[str]:
    router, index, codes = setup
    decision = router.route(index, type_code, severity, *at)
    return [codes[a.subcentre_id] for a in decision.assignments]


def test_a_building_fire_goes_to_the_local_fire_station_only(setup: Setup) -> None:
    assert route(setup, "201", Severity.IV) == ["fire-xiling"]


def test_a_serious_building_fire_adds_the_local_hospital(setup: Setup) -> None:
    assert route(setup, "201", Severity.II) == ["fire-xiling", "health-central"]


def test_a_flood_goes_to_water_and_a_severe_flood_also_to_civil_affairs_and_health(setup: Setup) -> None:
    assert route(setup, "101", Severity.IV) == ["water"]
    assert route(setup, "101", Severity.I) == ["water", "civil-affairs", "health-central"]


def test_a_major_earthquake_goes_to_all_six_departments(setup: Setup) -> None:
    dangyang = (111.79, 30.82)
    chosen = route(setup, "103", Severity.I, dangyang)
    assert chosen[0] == "earthquake"  # the responsible department first, then those severity adds
    assert sorted(chosen) == sorted(
        ["fire-dangyang", "water", "civil-defence", "earthquake", "civil-affairs", "health-dangyang"])
    assert route(setup, "103", Severity.III, dangyang) == ["earthquake"]


def test_a_category_responsibility_covers_its_subtypes(setup: Setup) -> None:
    assert route(setup, "302", Severity.IV) == ["health-central"]  # health handles all of category 3


def test_a_department_without_sub_centres_is_reported_not_dropped(setup: Setup) -> None:
    router, _, _ = setup
    decision = router.route(Jurisdictions([]), "201", Severity.IV, *XILING)
    assert decision.assignments == ()
    assert decision.departments_without_subcentre == ("fire",)
    assert decision.flagged

"""The scenario registry: add a module exposing ``SCENARIO`` and list it here."""

from __future__ import annotations

from bench.scenario import Scenario
from bench.scenarios import (
    admin,
    churn,
    cluster,
    cluster_history,
    fanout,
    fanout_v2,
    heartbeat,
    history,
    idle,
    latency,
    soak,
    storm,
    sweep,
)

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        fanout.SCENARIO,
        fanout_v2.SCENARIO,
        latency.SCENARIO,
        idle.SCENARIO,
        churn.SCENARIO,
        admin.SCENARIO,
        heartbeat.SCENARIO,
        sweep.SCENARIO,
        cluster.SCENARIO,
        cluster_history.SCENARIO,
        history.SCENARIO,
        storm.SCENARIO,
        soak.SCENARIO,
    )
}

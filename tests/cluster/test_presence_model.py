"""Cluster presence against a model (:mod:`tests.cluster.presence_model`)."""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from .presence_model import FIGURES, PresenceMachine


def test_presence_converges_to_the_live_members_on_every_node_and_client() -> None:
    run_state_machine_as_test(
        PresenceMachine,
        settings=settings(
            max_examples=100,
            stateful_step_count=60,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
    print(f"\npresence model: {FIGURES}")
    assert FIGURES["kills"]
    assert FIGURES["outages"]
    assert FIGURES["deadlines"]
    assert FIGURES["leaves_checked"]

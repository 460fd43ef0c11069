"""The hazard state machine: every allowed transition, every refused one, from the table."""

from __future__ import annotations

import itertools
from datetime import datetime, timezone

import pytest

from gisgrid.errors import IllegalTransition, InputError
from gisgrid.hazards.workflow import (
    TERMINAL_STATES,
    TRANSITIONS,
    Action,
    State,
    allowed_transitions,
    apply_transition,
    first_event,
    next_state,
    render_transition_table,
)

AT = datetime(2025, 10, 9, 9, 30, tzinfo=timezone.utc)
ALLOWED = {(t.source, t.action): t.target for t in TRANSITIONS}
REFUSED = [pair for pair in itertools.product(State, Action) if pair not in ALLOWED]


@pytest.mark.parametrize(("source", "action", "target"),
                         [(t.source, t.action, t.target) for t in TRANSITIONS],
                         ids=[f"{t.source.value}-{t.action.value}" for t in TRANSITIONS])
def test_allowed_transition_gives_target_and_event(source, action, target):
    event = apply_transition(source, action, actor="李网格", at=AT, note="ok", role="village")
    assert event.to_state is target
    assert (event.from_state, event.action, event.actor, event.at, event.role) == (
        source, action.value, "李网格", AT, "village")


@pytest.mark.parametrize(("source", "action"), REFUSED,
                         ids=[f"{s.value}-{a.value}" for s, a in REFUSED])
def test_refused_transition_names_state_action_and_allowed(source, action):
    with pytest.raises(IllegalTransition) as err:
        apply_transition(source, action, actor="x", at=AT)
    text = str(err.value)
    assert source.zh in text and source.value in text
    assert action.value in text and action.zh in text
    for t in allowed_transitions(source):
        assert t.action.value in text and t.action.zh in text
    if source in TERMINAL_STATES:
        assert "terminal" in text
    assert err.value.exit_code == 2 and err.value.http_status == 409


def test_table_matches_the_issue_rules():
    def targets(state):
        return {t.target for t in allowed_transitions(state)}
    assert targets(State.REPORTED) == {State.ACCEPTED, State.RETURNED, State.VOIDED}
    assert targets(State.ACCEPTED) == {State.DISPATCHED, State.SUSPENDED, State.VOIDED}
    assert targets(State.DISPATCHED) == {State.HANDLING, State.RETURNED}
    assert targets(State.HANDLING) == {State.VERIFYING, State.POSTPONED, State.SUSPENDED}
    assert targets(State.POSTPONED) == {State.HANDLING}
    assert targets(State.VERIFYING) == {State.CLOSED, State.HANDLING}
    assert targets(State.RETURNED) == {State.REPORTED, State.VOIDED}
    assert targets(State.SUSPENDED) == {State.DISPATCHED, State.HANDLING}
    assert targets(State.CLOSED) == set() and targets(State.VOIDED) == set()


def test_every_state_is_reachable_from_reported():
    seen, todo = {State.REPORTED}, [State.REPORTED]
    while todo:
        for t in allowed_transitions(todo.pop()):
            if t.target not in seen:
                seen.add(t.target)
                todo.append(t.target)
    assert seen == set(State)


def test_chinese_names_parse():
    assert next_state("上报", "受理") is State.ACCEPTED
    assert State.parse("结案") is State.CLOSED


def test_unknown_action_and_state_are_input_errors():
    with pytest.raises(InputError, match="action: unknown action 'fly'"):
        next_state("reported", "fly")
    with pytest.raises(InputError, match="state: unknown state 'lost'"):
        next_state("lost", "accept")


def test_event_needs_actor_and_aware_time():
    with pytest.raises(InputError) as err:
        apply_transition("reported", "accept", actor=" ", at=datetime(2025, 1, 1))
    assert len(err.value.details) == 2
    assert first_event(actor="王", at=AT).to_state is State.REPORTED


def test_table_renders_every_row_with_both_languages():
    table = render_transition_table()
    assert len(table.splitlines()) == 2 + len(TRANSITIONS)
    assert "| 核查 verifying | 核查不通过 reject | 处置 handling |" in table


def test_docs_show_the_current_tables():
    from pathlib import Path

    from gisgrid.hazards.categories import render_category_table

    doc = (Path(__file__).resolve().parents[2] / "docs" / "hazards.md").read_text("utf-8")
    assert render_transition_table() in doc
    assert render_category_table() in doc

"""The hazard workflow (隐患处置流程): states, actions and the one table of allowed transitions.

Pure: no I/O. The storage layer (:mod:`gisgrid.db.hazards`) locks the hazard row, asks
:func:`apply_transition` for the next state and the event to log, and writes both in one
transaction. The API and the CLI call the same storage function, so they share these rules.

The route follows the plan: a grid worker reports (上报), the village/community or township
accepts (受理) and dispatches (派遣) the matter to whoever fixes it, who handles it (处置); the
township checks the fix (核查) and closes it (结案). Side states: returned to the reporter for
more information (退回), postponed with a new due date (延期), listed for long-term follow-up
(挂账), voided as a false or duplicate report (作废). ``closed`` and ``voided`` are terminal:
a hazard that comes back after closing is reported anew (and may be linked as a duplicate).

The table, as :func:`render_transition_table` prints it for the docs:

>>> print(render_transition_table())  # doctest: +ELLIPSIS
| from | action | to |
|---|---|---|
| 上报 reported | 受理 accept | 受理 accepted |
...
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from gisgrid.errors import IllegalTransition, InputError


class _Labelled(str, Enum):
    """A key with a Chinese name; parsed from either, listed with both when unknown."""

    @property
    def zh(self) -> str:
        return _LABELS_ZH[self]

    @property
    def label(self) -> str:
        """Chinese and English, e.g. ``上报 reported``."""
        return f"{self.zh} {self.value}"

    @classmethod
    def parse(cls, value):
        """The member named by its key or Chinese name, or :class:`InputError` naming the field.

        >>> State.parse("挂账")
        <State.SUSPENDED: 'suspended'>
        """
        if isinstance(value, cls):
            return value
        for member in cls:
            if value in (member.value, member.zh):
                return member
        field = cls.__name__.lower()
        allowed = ", ".join(m.label for m in cls)
        raise InputError(f"{field}: unknown {field} {value!r}", [f"allowed: {allowed}"])


class State(_Labelled):
    """A hazard's state; the value is the key stored in the database."""

    REPORTED = "reported"
    ACCEPTED = "accepted"
    DISPATCHED = "dispatched"
    HANDLING = "handling"
    VERIFYING = "verifying"
    CLOSED = "closed"
    RETURNED = "returned"
    POSTPONED = "postponed"
    SUSPENDED = "suspended"
    VOIDED = "voided"


STATE_LABELS_ZH: dict[State, str] = {
    State.REPORTED: "上报",
    State.ACCEPTED: "受理",
    State.DISPATCHED: "派遣",
    State.HANDLING: "处置",
    State.VERIFYING: "核查",
    State.CLOSED: "结案",
    State.RETURNED: "退回",
    State.POSTPONED: "延期",
    State.SUSPENDED: "挂账",
    State.VOIDED: "作废",
}

TERMINAL_STATES = frozenset({State.CLOSED, State.VOIDED})
"""States no action leaves."""

OPEN_STATES = frozenset(State) - TERMINAL_STATES
"""States of a hazard still being worked on (duplicates are looked for among these)."""

CLOCK_STOPPED_STATES = frozenset({State.SUSPENDED}) | TERMINAL_STATES
"""States in which a hazard is never overdue: finished, or listed for long-term follow-up (挂账)
with its own remediation plan outside the workday due date."""


class Action(_Labelled):
    """What an actor does to a hazard; the value is the key the CLI and API accept."""

    ACCEPT = "accept"
    DISPATCH = "dispatch"
    START = "start"
    SUBMIT_FOR_VERIFICATION = "submit_for_verification"
    CLOSE = "close"
    REJECT = "reject"
    RETURN = "return"
    RESUBMIT = "resubmit"
    POSTPONE = "postpone"
    SUSPEND = "suspend"
    RESUME = "resume"
    VOID = "void"


ACTION_LABELS_ZH: dict[Action, str] = {
    Action.ACCEPT: "受理",
    Action.DISPATCH: "派遣",
    Action.START: "开始处置",
    Action.SUBMIT_FOR_VERIFICATION: "提交核查",
    Action.CLOSE: "结案",
    Action.REJECT: "核查不通过",
    Action.RETURN: "退回",
    Action.RESUBMIT: "重新上报",
    Action.POSTPONE: "延期",
    Action.SUSPEND: "挂账",
    Action.RESUME: "恢复处置",
    Action.VOID: "作废",
}

_LABELS_ZH: dict[_Labelled, str] = {**STATE_LABELS_ZH, **ACTION_LABELS_ZH}


@dataclass(frozen=True)
class Transition:
    """One allowed step: in ``source``, ``action`` leads to ``target``."""

    source: State
    action: Action
    target: State


S, A = State, Action
TRANSITIONS: tuple[Transition, ...] = tuple(Transition(*row) for row in (
    (S.REPORTED, A.ACCEPT, S.ACCEPTED),
    (S.REPORTED, A.RETURN, S.RETURNED),
    (S.REPORTED, A.VOID, S.VOIDED),
    (S.ACCEPTED, A.DISPATCH, S.DISPATCHED),
    (S.ACCEPTED, A.SUSPEND, S.SUSPENDED),
    (S.ACCEPTED, A.VOID, S.VOIDED),
    (S.DISPATCHED, A.START, S.HANDLING),
    (S.DISPATCHED, A.RETURN, S.RETURNED),
    (S.HANDLING, A.SUBMIT_FOR_VERIFICATION, S.VERIFYING),
    (S.HANDLING, A.POSTPONE, S.POSTPONED),
    (S.HANDLING, A.SUSPEND, S.SUSPENDED),
    (S.POSTPONED, A.RESUME, S.HANDLING),
    (S.VERIFYING, A.CLOSE, S.CLOSED),
    (S.VERIFYING, A.REJECT, S.HANDLING),
    (S.RETURNED, A.RESUBMIT, S.REPORTED),
    (S.RETURNED, A.VOID, S.VOIDED),
    (S.SUSPENDED, A.DISPATCH, S.DISPATCHED),
    (S.SUSPENDED, A.RESUME, S.HANDLING),
))
"""Every allowed transition. Anything not listed here is refused."""
del S, A

_NEXT: dict[tuple[State, Action], State] = {(t.source, t.action): t.target for t in TRANSITIONS}

_ACTION_BETWEEN: dict[tuple[State, State], Action] = {(t.source, t.target): t.action
                                                      for t in TRANSITIONS}
if len(_ACTION_BETWEEN) != len(TRANSITIONS):  # pragma: no cover - guards edits of the table
    raise RuntimeError("two actions lead from the same state to the same state")


def action_between(source: "State | None", target: State) -> str:
    """The action that led from ``source`` to ``target`` (the event log stores only states).

    ``report`` opens a history; an event that keeps the state (a duplicate link) is ``note``.
    """
    if source is None:
        return "report"
    if source is target:
        return "note"
    return _ACTION_BETWEEN[(source, target)].value


EXTENDS_DUE_DATE = frozenset({Action.POSTPONE})
"""Actions after which the storage layer computes a new due date (延期 grants more time)."""


@dataclass(frozen=True)
class HazardEvent:
    """One logged step of a hazard's history (a ``hazard_event`` row)."""

    from_state: State | None
    to_state: State
    action: str
    actor: str
    at: datetime
    note: str = ""
    role: str | None = None


def allowed_transitions(state: "State | str") -> list[Transition]:
    """The transitions that leave ``state``, in table order (empty for a terminal state)."""
    state = State.parse(state)
    return [t for t in TRANSITIONS if t.source is state]


def next_state(state: "State | str", action: "Action | str") -> State:
    """The state ``action`` leads to from ``state``, or :class:`IllegalTransition`.

    >>> next_state("verifying", "reject")
    <State.HANDLING: 'handling'>
    """
    state, action = State.parse(state), Action.parse(action)
    try:
        return _NEXT[(state, action)]
    except KeyError:
        allowed = allowed_transitions(state)
        if allowed:
            listed = "; ".join(f"{t.action.label} → {t.target.label}" for t in allowed)
        else:
            listed = "none: the state is terminal (终态)"
        raise IllegalTransition(
            f"hazard in state {state.label} cannot {action.label}: "
            f"illegal transition (不允许的状态变更)",
            [f"allowed from {state.label}: {listed}"],
        ) from None


def apply_transition(
    state: "State | str",
    action: "Action | str",
    *,
    actor: str,
    at: datetime,
    note: str = "",
    role: str | None = None,
) -> HazardEvent:
    """Check one step and return the event to log.

    Parameters
    ----------
    state, action
        The hazard's current state and the requested action (keys or Chinese names).
    actor
        Who acts (name or account); required.
    at
        When, timezone-aware.
    note, role
        Free text, and the actor's role (e.g. ``township``) when known.

    Raises
    ------
    InputError
        ``actor`` is empty or ``at`` is naive (every problem listed).
    IllegalTransition
        ``action`` is not allowed from ``state``; the message lists the allowed actions.
    """
    problems = []
    if not isinstance(actor, str) or not actor.strip():
        problems.append("actor: required (who performs the action)")
    if not isinstance(at, datetime) or at.tzinfo is None:
        problems.append(f"at: must be a timezone-aware datetime, got {at!r}")
    if problems:
        raise InputError("cannot record the hazard event", problems)
    action = Action.parse(action)
    target = next_state(state, action)
    return HazardEvent(State.parse(state), target, action.value, actor.strip(), at, note or "", role)


def first_event(*, actor: str, at: datetime, note: str = "", role: str | None = None) -> HazardEvent:
    """The event that opens every hazard's history: nothing → ``reported``."""
    if not isinstance(actor, str) or not actor.strip():
        raise InputError("cannot record the hazard", ["actor: required (who reports)"])
    return HazardEvent(None, State.REPORTED, "report", actor.strip(), at, note or "", role)


def render_transition_table() -> str:
    """The transition table as Markdown (from, action, to), Chinese and English labels."""
    lines = ["| from | action | to |", "|---|---|---|"]
    for t in TRANSITIONS:
        lines.append(f"| {t.source.label} | {t.action.label} | {t.target.label} |")
    return "\n".join(lines)

"""Hazards (隐患): the pure rules of the hazard workflow.

- :mod:`~gisgrid.hazards.workflow`: states, actions, the transition table.
- :mod:`~gisgrid.hazards.categories`: category vocabulary, due workdays, duplicate radius.
- :mod:`~gisgrid.hazards.calendar`: workday calendar (holidays, 调休), due dates, overdue.
- :mod:`~gisgrid.hazards.routing`: which grid receives a report.
- :mod:`~gisgrid.hazards.duplicates`: duplicate suggestions.

Storage is :mod:`gisgrid.db.hazards`; the CLI is ``gisgrid hazards``.
"""

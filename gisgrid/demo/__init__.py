"""The demo city: the real outline of Chibi (赤壁市) and a synthetic hierarchy and field data.

:mod:`gisgrid.demo.city` builds the four-level grid hierarchy, :mod:`gisgrid.demo.field` the
business units, people, patrols and hazards. Both are pure and seeded; nothing below the city
outline is real.
"""

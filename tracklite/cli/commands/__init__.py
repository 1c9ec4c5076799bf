"""The command groups; each module's ``register`` adds its sub-commands to the parser."""

from __future__ import annotations

from . import browse, demo, inspect, library, lifecycle

#: In the order ``tracklite --help`` lists them.
GROUPS = (demo, browse, inspect, lifecycle, library)

"""The command groups; each module's ``register`` adds its sub-commands to the parser."""

from __future__ import annotations

from . import browse as browse
from . import demo as demo
from . import inspect as inspect
from . import library as library
from . import lifecycle as lifecycle
from . import report as report
from . import ui as ui

#: In the order ``tracklite --help`` lists them.
GROUPS = (demo, browse, inspect, lifecycle, library, report, ui)

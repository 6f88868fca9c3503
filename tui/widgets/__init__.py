"""The panes of the main screen: each draws data it is handed, never engine objects it fetched."""

from .counters import CountersPane
from .events import EventLog
from .status import ErrorBar, StatusBar
from .tables import GuestTablePane, SecondTablePane
from .timeline import TimelineStrip
from .tlb import TlbPane
from .walkgrid import WalkGrid

__all__ = ["CountersPane", "ErrorBar", "EventLog", "GuestTablePane", "SecondTablePane", "StatusBar", "TimelineStrip", "TlbPane",
           "WalkGrid"]

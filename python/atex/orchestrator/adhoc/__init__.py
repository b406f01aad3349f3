"""The ad-hoc orchestrator: the next test goes to whichever system is
free (libatex's orchestrator; hooks overridable in Python)."""

from .adhoc import AdHocOrchestrator, FailedSetupError
from .mixins import (
    FMFDestructiveMixin,
    FMFDurationMixin,
    FMFPriorityMixin,
    LimitedRerunsMixin,
)

__all__ = (
    "AdHocOrchestrator",
    "FailedSetupError",
    "LimitedRerunsMixin",
    "FMFDurationMixin",
    "FMFPriorityMixin",
    "FMFDestructiveMixin",
)

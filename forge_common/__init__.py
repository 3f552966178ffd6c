"""Helpers that pipeline/, models/ and assets/ share: atomic files, progress log lines, durations.

Why a package of its own: `pipeline` and `models` never import each other (DESIGN.md: a training shard is
the hand-over, and each is a library on its own), and neither imports Dagster. A helper both need therefore
lives below both, here: standard library only, importing nothing of the project, so any of the three may
use it without changing the dependency direction (`assets -> pipeline, models -> forge_common`). What knows
arXiv belongs in pipeline/, what needs torch in models/, what needs Dagster in assets/.
"""

from forge_common.files import atomic_write
from forge_common.progress import ProgressLog, format_duration

__all__ = ["ProgressLog", "atomic_write", "format_duration"]

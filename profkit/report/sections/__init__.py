"""Importing this package registers every built-in report section (see registry.py)."""

from . import categories  # noqa: F401
from . import communication  # noqa: F401
from . import core  # noqa: F401
from . import energy  # noqa: F401
from . import memory  # noqa: F401
from . import memory_traffic  # noqa: F401
from . import phases  # noqa: F401

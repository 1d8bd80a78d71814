"""Training-step boundaries from a global optimizer step hook.

One boundary per ``step()`` of the first optimizer that steps (a GAN's second
optimizer does not double the step count). A subclass whose ``step`` calls
``super().step()`` fires the global hooks twice; a per-optimizer nesting
depth counts only the outermost call.
"""

from __future__ import annotations

import time
from typing import Callable


class StepHook:
    """Calls ``on_step(step_index, start_ns, end_ns)`` after each training step."""

    def __init__(self, on_step: Callable[[int, int, int], None], first_start_ns: int | None = None):
        self._on_step = on_step
        self._handles: list = []
        self._depth: dict[int, int] = {}
        self._primary: int | None = None
        self._steps = 0
        self._last_end_ns = first_start_ns or time.time_ns()

    @property
    def steps(self) -> int:
        return self._steps

    def install(self) -> None:
        if self._handles:
            return
        from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

        self._handles = [register_optimizer_step_pre_hook(self._pre), register_optimizer_step_post_hook(self._post)]

    def uninstall(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _pre(self, optimizer, args, kwargs) -> None:
        key = id(optimizer)
        self._depth[key] = self._depth.get(key, 0) + 1

    def _post(self, optimizer, args, kwargs) -> None:
        key = id(optimizer)
        depth = self._depth.get(key, 1) - 1
        self._depth[key] = depth
        if depth > 0:  # the inner super().step() of a subclass
            return
        if self._primary is None:
            self._primary = key
        if key != self._primary:
            return
        end_ns = time.time_ns()
        start_ns, self._last_end_ns = self._last_end_ns, end_ns
        self._steps += 1
        self._on_step(self._steps, start_ns, end_ns)

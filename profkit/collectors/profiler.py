"""Start and stop torch's Kineto profiler for one recording.

profkit drives ``torch.autograd.profiler.profile`` (the Kineto profiler that
``torch.profiler.profile`` wraps) directly. The wrapper's start probes
``hasattr(torch, "_inductor")``, and that probe imports all of TorchInductor
and TorchDynamo: 1–2 s of a run that never compiles anything. The one thing
the wrapper does with inductor is the CUDA-graph/CUPTI teardown workaround,
repeated here from what is already imported: inductor's config cannot have
turned CUDA graphs on if inductor has not been imported yet.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from .quiet import quiet_profiler


class KinetoProfiler:
    """One start, one stop; ``stop()`` returns the profiler's results (``kineto_results``)."""

    def __init__(self, *, record_shapes: bool, profile_memory: bool = False):
        self.record_shapes = record_shapes
        self.profile_memory = profile_memory  # torch's allocator: an event per allocation and free
        self._profile: Any = None
        #: The program ran torch.profiler itself: one profiler runs at a time, so starting its own
        #: took over profkit's session, and stopping it ended that session with every event in it.
        self.displaced = False

    def start(self) -> None:
        import torch
        from torch.autograd import profiler as autograd_profiler

        use_device = "cuda" if torch.cuda.is_available() else None
        if use_device is not None:
            _keep_cupti_for_cuda_graphs()
        with quiet_profiler():
            self._profile = autograd_profiler.profile(
                use_cpu=True, use_device=use_device, record_shapes=self.record_shapes, use_kineto=True,
                profile_memory=self.profile_memory,
            )
            self._profile.__enter__()

    def stop(self) -> Any:
        if self._profile is None:
            return None
        profile, self._profile = self._profile, None
        self.displaced = not profiler_enabled(unknown=True)
        with quiet_profiler():  # (torch warns "no active profiling session" when displaced)
            try:
                profile.__exit__(None, None, None)
            except RuntimeError:  # torch before 2.13, displaced: "Can't disable Kineto profiler when it's not running"
                if not self.displaced:
                    raise
                return None  # (the program's own profiler ended the session: nothing is left to read)
        return profile.kineto_results


def profiler_enabled(*, unknown: bool) -> bool:
    """Whether a profiler session is on in this process (torch's own flag; ``unknown`` where this torch
    lacks it)."""
    from torch.autograd import profiler as autograd_profiler

    return bool(getattr(autograd_profiler, "_is_profiler_enabled", unknown))


def _keep_cupti_for_cuda_graphs() -> None:
    """torch.profiler's guard: CUPTI teardown crashes programs that replay CUDA graphs."""
    inductor_config = sys.modules.get("torch._inductor.config")
    uses_cuda_graphs = bool(getattr(getattr(inductor_config, "triton", None), "cudagraphs", False))
    if uses_cuda_graphs or os.environ.get("TORCHINDUCTOR_CUDAGRAPHS") == "1":
        os.environ["TEARDOWN_CUPTI"] = "0"
        os.environ["DISABLE_CUPTI_LAZY_REINIT"] = "1"

"""Drive the NVML sampler over a fake NVML on a fake clock (shared by the telemetry tests)."""

from __future__ import annotations

from profkit.collectors.telemetry import FakeDevice, FakeNvml
from profkit.collectors.telemetry.buffer import SampleBuffer
from profkit.collectors.telemetry.nvml import NvmlSampler

T0 = 1_700_000_000_000_000_000
MS = 1_000_000


def sample_fake(device: FakeDevice, seconds: float, *, interval_ns: int = 20 * MS, sampler_kwargs: dict | None = None,
                **fake_kwargs) -> tuple[SampleBuffer, NvmlSampler, FakeNvml]:
    """Open the sampler, tick it every ``interval_ns`` for ``seconds`` of fake time, close it."""
    now = [T0]
    fake = FakeNvml([device], clock=lambda: now[0], **fake_kwargs)
    buffer = SampleBuffer()
    sampler = NvmlSampler(fake, buffer, interval_ns, clock=lambda: now[0], **(sampler_kwargs or {}))
    rows: list = []
    sampler.open(rows)
    for _ in range(int(seconds * 1e9 / interval_ns)):
        now[0] += interval_ns
        sampler.tick(rows)
    sampler.close(rows)
    buffer.append_many(rows)
    return buffer, sampler, fake

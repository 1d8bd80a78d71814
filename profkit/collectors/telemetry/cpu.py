"""Host telemetry without root: process CPU time, resident memory, RAPL package energy.

RAPL energy comes from /sys/class/powercap (``intel-rapl:N`` package zones,
which AMD CPUs also expose). Since 2020 most kernels make ``energy_uj``
readable by root only; then the sampler says so in one note and goes on.
Files are kept open and read with ``pread`` so a sample costs a few
microseconds.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from .buffer import SampleBuffer

POWERCAP_ROOT = Path("/sys/class/powercap")
_STATM = Path("/proc/self/statm")


@dataclass
class _Zone:
    name: str
    fd: int
    code: int


class CpuSampler:
    """Samples this process and the CPU packages; same open/tick/close protocol as NvmlSampler."""

    def __init__(self, buffer: SampleBuffer, every_ticks: int = 1, *, powercap_root: Path | str = POWERCAP_ROOT,
                 statm: Path | str = _STATM, clock=time.time_ns):
        self._buffer = buffer
        self.every_ticks = max(1, int(every_ticks))
        self._root = Path(powercap_root)
        self._statm_path = Path(statm)
        self._clock = clock
        self._page_bytes = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        self._statm_fd: int | None = None
        self._zones: list[_Zone] = []
        self._tick = 0
        self.notes: list[str] = []
        self.info: dict = {}

    def open(self, rows: list) -> bool:
        self._cpu_code = self._buffer.series("cpu_time_s", "cpu", -1)
        self._rss_code = self._buffer.series("rss_bytes", "cpu", -1)
        try:
            self._statm_fd = os.open(self._statm_path, os.O_RDONLY)
        except OSError:
            self.notes.append("telemetry: no /proc/self/statm on this system: no resident-memory (RSS) samples")
        self._open_rapl()
        self.tick(rows, force=True)
        return True

    def tick(self, rows: list, force: bool = False) -> None:
        self._tick += 1
        if not force and self._tick % self.every_ticks:
            return
        now = self._clock()
        rows.append((self._cpu_code, now, time.process_time(), 0))
        if self._statm_fd is not None:
            resident_pages = int(os.pread(self._statm_fd, 128, 0).split()[1])
            rows.append((self._rss_code, now, float(resident_pages * self._page_bytes), 0))
        for zone in self._zones:
            try:
                micro_j = int(os.pread(zone.fd, 32, 0))
            except (OSError, ValueError):
                continue
            rows.append((zone.code, now, micro_j / 1e6, 0))

    def close(self, rows: list) -> None:
        self.tick(rows, force=True)
        for fd in [self._statm_fd, *(z.fd for z in self._zones)]:
            if fd is not None:
                os.close(fd)
        self._statm_fd, self._zones = None, []

    def _open_rapl(self) -> None:
        packages = sorted(p for p in self._root.glob("*rapl:*") if p.name.count(":") == 1)
        if not packages:
            self.notes.append(f"telemetry: no RAPL energy counters under {self._root}: no CPU energy")
            return
        denied = []
        for zone_dir in packages:
            try:
                name = (zone_dir / "name").read_text().strip()
                fd = os.open(zone_dir / "energy_uj", os.O_RDONLY)
                int(os.pread(fd, 32, 0))
            except PermissionError:
                denied.append(zone_dir.name)
                continue
            except (OSError, ValueError):
                continue
            try:
                wrap_j = int((zone_dir / "max_energy_range_uj").read_text()) / 1e6
            except (OSError, ValueError):
                wrap_j = None
            extra = {"zone": name, "wrap_j": wrap_j} if wrap_j else {"zone": name}
            self._zones.append(_Zone(name, fd, self._buffer.series("rapl_energy_j", "cpu", -1, extra)))
        if denied:
            self.notes.append(
                f"telemetry: RAPL energy not readable without root ({self._root}/{denied[0]}/energy_uj: "
                "permission denied): no CPU energy"
            )
        self.info = {"rapl_zones": [z.name for z in self._zones]}

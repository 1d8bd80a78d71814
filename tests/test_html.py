"""The HTML report: escaping, panels, downsampled figures, and the page in a real headless browser.

The synthetic trace below is small enough to count by hand: two training steps,
each with one bf16 GEMM kernel (1000 ns) launched by aten::mm and one kernel
named ``<script>alert(1)</script>`` (500 ns) launched by aten::add; then one
prefill and six decode passes; GPU power and memory samples every 100 ns.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from profkit.report import ReportOptions, build_report
from profkit.report.context import ReportContext
from profkit.report.html import render_diff_html, render_html
from profkit.report.html import series, workload
from profkit.report.html.markup import esc, script_json
from profkit.report.html.tables import fmt_field
from profkit.trace import build_events, load, write_trace

from conftest import run_profkit

EVIL = "<script>alert(1)</script>"
EVIL_TEXT = "&lt;script&gt;alert(1)&lt;/script&gt;"
T0 = 1_700_000_000_000_000_000
STEP_NS = 4000
GEMM_SHAPES = "[[64,128],[128,256]]"


def _rows() -> list[dict]:
    rows: list[dict] = []
    corr = 100

    def host(kind, name, start, duration, **more):
        rows.append({"kind": kind, "name": name, "start_ns": T0 + start, "duration_ns": duration, "device_type": "cpu",
                     "device_index": -1, "thread_id": 1, **more})

    def kernel(name, start, duration, linked):
        rows.append({"kind": "kernel", "name": name, "start_ns": T0 + start, "duration_ns": duration,
                     "device_type": "gpu", "device_index": 0, "stream": 7, "linked_correlation_id": linked})

    for step in range(2):
        s = step * STEP_NS
        rows.append({"kind": "phase", "name": "train_step", "start_ns": T0 + s, "duration_ns": STEP_NS,
                     "device_type": "cpu", "device_index": -1, "extra": json.dumps({"step": step + 1})})
        host("cpu_op", "aten::mm", s + 100, 300, correlation_id=corr, input_shapes=GEMM_SHAPES,
             input_dtypes='["c10::BFloat16","c10::BFloat16"]')
        host("runtime", "cudaLaunchKernel", s + 150, 50, correlation_id=corr + 1)
        kernel("sm90_gemm_bf16", s + 500, 1000, corr + 1)
        host("cpu_op", "aten::add", s + 1600, 100, correlation_id=corr + 2, input_shapes="[[64,256],[64,256]]",
             input_dtypes='["float","float"]')
        host("runtime", "cudaLaunchKernel", s + 1620, 20, correlation_id=corr + 3)
        kernel(EVIL, s + 1800, 500, corr + 3)
        corr += 10
    rows.append({"kind": "phase", "name": "prefill", "start_ns": T0 + 8000, "duration_ns": 1000, "device_type": "cpu",
                 "device_index": -1, "batch_size": 2, "token_count": 64})
    for i in range(6):
        rows.append({"kind": "phase", "name": "decode", "start_ns": T0 + 9000 + 500 * i, "duration_ns": 400 + 20 * i,
                     "device_type": "cpu", "device_index": -1, "batch_size": 2, "token_count": 2})
    for t in range(0, 12_001, 100):
        rows.append({"kind": "sample", "name": "power_w", "start_ns": T0 + t, "duration_ns": 0, "device_type": "gpu",
                     "device_index": 0, "value": 300.0 + (t % 1000) / 10})
        rows.append({"kind": "sample", "name": "memory_used_bytes", "start_ns": T0 + t, "duration_ns": 0,
                     "device_type": "gpu", "device_index": 0, "value": 2.0**30})
    return rows


def write_synthetic(path: Path) -> Path:
    raw = pd.DataFrame(_rows())
    raw["process_id"] = 7
    for column in ("thread_id", "correlation_id", "linked_correlation_id", "stream", "batch_size", "token_count"):
        raw[column] = raw[column].astype("Int64")
    metadata = {
        "command": ["python", "train.py", "--name", "</script><!--", EVIL],
        "devices": [{"index": 0, "type": "gpu", "name": "NVIDIA H100 80GB HBM3"}],
        "producer": "test",
    }
    return write_trace(path, build_events(raw), metadata)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("html") / "synthetic.parquet")


@pytest.fixture(scope="module")
def page(synthetic) -> str:
    traces = [load(synthetic)]
    options = ReportOptions()
    return render_html(build_report(traces, options), traces, options=options)


# ---------------------------------------------------------------- escaping


def test_script_json_cannot_close_the_script_and_round_trips():
    value = {"name": "</script><!-- a & b \u2028", "n": 1}
    text = script_json(value)
    assert "</" not in text and "<!--" not in text and "<" not in text and "\u2028" not in text
    assert json.loads(text) == value


def test_esc_escapes_quotes_and_markup():
    assert esc('<a href="x">\'') == "&lt;a href=&quot;x&quot;&gt;&#x27;"
    assert esc(None) == ""


def test_trace_strings_render_as_text(page):
    assert EVIL not in page
    assert EVIL_TEXT in page  # the kernel name shows, as text
    assert "</script><!--" not in page  # the command line
    # Exactly two script elements: the embedded JSON report and report.js.
    assert len(re.findall(r"<script\b", page)) == 2
    embedded = re.search(r'<script type="application/json" id="profkit-report">(.*?)</script>', page, re.S).group(1)
    assert json.loads(embedded)["run"]["command"][-1] == EVIL


# ---------------------------------------------------------------- panels


def _panel_ids(page: str) -> list[str]:
    return re.findall(r'<section class="panel" id="([^"]+)"', page)


def test_panels_of_a_full_trace(page):
    ids = _panel_ids(page)
    for key in ("summary", "roofline", "timeline", "inference", "training", "top_kernels"):
        assert key in ids, key
    assert "could not be drawn" not in page
    assert "<script" not in page.split("<main>")[1].split("</main>")[0]


def test_missing_sections_are_left_out():
    document = {"report_version": 1, "run": {"command": ["x"], "files": []}, "totals": {"span_ns": 10}}
    page = render_html(document)
    assert _panel_ids(page) == ["summary"]


def test_unknown_sections_reach_the_more_panel():
    document = {"run": {}, "new_thing": [{"name": EVIL, "time_ns": 2_000_000}]}
    page = render_html(document)
    assert "more" in _panel_ids(page)
    assert EVIL_TEXT in page and EVIL not in page
    assert 'data-v="2000000"' in page and "2 ms" in page


def test_energy_panel_with_figures_and_with_a_reason():
    with_figures = render_html({"energy": {"total_j": 1500.0, "avg_power_w": 300.0, "peak_power_w": 650.0,
                                           "source": "nvml_energy_counter"}})
    assert "1.5 kJ" in with_figures and "650 W" in with_figures
    without = render_html({"energy": {"total_j": None, "reason": "no telemetry"}})
    assert "No energy figures: no telemetry." in without


def test_memory_panel_shows_each_devices_peaks_the_op_at_the_peak_and_the_phases():
    memory = {"devices": [{"device": "GPU 0", "rank": 0, "device_type": "gpu", "device_index": 0,
                           "allocated_peak_bytes": 3 * 2**30, "allocated_peak_at_ns": 1_500_000,
                           "allocated_first_bytes": 2**30, "allocated_last_bytes": 2**30,
                           "allocated_peak_op": EVIL, "allocated_peak_call": "aten::linear",
                           "reserved_peak_bytes": 4 * 2**30}],
              "phases": [{"phase": "prefill", "allocated_peak_bytes": 3 * 2**30},
                         {"phase": "decode", "allocated_peak_bytes": 2 * 2**30}],
              "top_allocations": [{"name": "aten::cat", "count": 48, "allocated_bytes": 5 * 2**30, "device_type": "gpu"}],
              "reason": None}
    page = render_html({"memory": memory})
    assert "memory" in _panel_ids(page) and "more" not in _panel_ids(page)
    assert "3 GiB" in page and "4 GiB" in page and "reserved peak (torch)" in page
    assert EVIL_TEXT in page and EVIL not in page and "inside aten::linear" in page
    assert "allocated peak per phase" in page and "decode" in page
    assert "aten::cat" in page and "5 GiB" in page  # (memory held: binary units, as in the terminal)
    without = render_html({"memory": {"devices": [], "phases": [], "reason": "no memory samples"}})
    assert "No memory figures: no memory samples." in without


def test_formats_follow_the_unit_in_the_name():
    assert fmt_field("time_ns", 1_500_000) == "1.5 ms"
    assert fmt_field("time_share", 0.25) == "25.0 %"
    assert fmt_field("change_time_ns", 0.1) == "+10.0 %"
    assert fmt_field("delta_time_ns", 2000) == "+2 µs"
    assert fmt_field("avg_power_w", 300.0) == "300 W"
    assert fmt_field("flops", 4.2e12) == "4.2 Tflop"
    # Memory held in binary units, as the memory section prints it; bytes moved in decimal ones.
    assert fmt_field("allocated_peak_bytes", 3 * 2**30) == "3 GiB"
    assert fmt_field("base_rss_high_water_bytes", 512 * 2**20) == "512 MiB"
    assert fmt_field("bytes", 3 * 2**30) == "3.22 GB"


# ---------------------------------------------------------------- figures from the events


def test_roofline_points_one_per_kernel_and_shape(synthetic, page):
    ctx = ReportContext(traces=[load(synthetic)])
    data = workload.roofline(ctx)
    assert data is not None
    by_name = {p.name: p for p in data.points}
    # Two points: the GEMM (2 calls, one shape) and the add kernel (2 calls).
    assert sorted(by_name) == sorted(["sm90_gemm_bf16", EVIL])
    gemm = by_name["sm90_gemm_bf16"]
    assert gemm.count == 2 and gemm.time_ns == 2000
    assert gemm.op == "aten::mm" and gemm.shapes == GEMM_SHAPES
    # 2·64·128·256 = 4,194,304 flop per call; bytes (64·128 + 128·256 + 64·256)·2 = 114,688 per call.
    assert gemm.flops == pytest.approx(2 * 4_194_304)
    assert gemm.intensity == pytest.approx(4_194_304 / 114_688)
    assert gemm.category == "contraction"
    assert by_name[EVIL].category == "elementwise"
    assert page.count('class="pt"') == 2
    assert data.roofs and data.roofs[0].bytes_per_s == pytest.approx(3.35e12)


def test_timeline_busy_share_and_downsampled_telemetry(synthetic):
    ctx = ReportContext(traces=[load(synthetic)])
    data = series.timeline(ctx.events)
    # Span: first event at 0 (step 1) to the last decode end, 9000 + 2500 + 500 = 12000 ns.
    assert data.span_ns == 12_000
    # Busy: 2 × (1000 + 500) ns of kernels = 3000 of 12000 ns -> 0.25 on average over equal bins.
    (label, fraction), = data.busy
    assert label == "GPU busy"
    assert float(np.mean(fraction)) == pytest.approx(0.25)
    lanes = {lane.metric.name: lane for lane in data.metrics}
    assert list(lanes) == ["power_w", "memory_used_bytes"]
    power = lanes["power_w"].lines[0]
    assert power.label == "GPU 0" and len(power.x_ns) == 121  # 0..12000 every 100 ns: kept as they are
    assert {w.name for w in data.phases} == {"train_step", "prefill", "decode"}
    assert [w.label for w in data.phases if w.name == "prefill"] == ["prefill · batch 2 · 64 tokens"]


def test_long_series_are_binned_to_bins_values():
    # 8000 samples over 400 bins: 20 per bin, alternating 100 and 300 -> mean 200, min 100, max 300.
    x = np.arange(8_000, dtype=float)
    line = series._downsample("GPU 0", x, np.where(x % 2 == 0, 100.0, 300.0), 8_000)
    assert len(line.x_ns) == series.BINS
    assert np.allclose(line.mean, 200.0) and np.allclose(line.lo, 100.0) and np.allclose(line.hi, 300.0)


def test_class_time_per_step(synthetic):
    ctx = ReportContext(traces=[load(synthetic)])
    steps = workload.windows(ctx, series.STEP_PHASES)
    assert [w.label for w in steps] == ["train_step 1", "train_step 2"]
    # Each step: the GEMM kernel (1000 ns, contraction) and the add kernel (500 ns, elementwise) of 4000 ns.
    assert steps[0].duration_ns == 4000
    assert steps[0].by_class == {"contraction": 1000.0, "elementwise": 500.0}
    passes = workload.windows(ctx, series.INFERENCE_PHASES)
    assert [w.label for w in passes] == ["prefill 1"] + [f"decode {i}" for i in range(1, 7)]


def test_page_is_small(page):
    assert len(page.encode()) < 150_000


# ---------------------------------------------------------------- diff


def test_diff_page_escapes_and_shows_changes():
    appeared = {"name": EVIL, "kind": "kernel", "base_time_ns": 0, "new_time_ns": 5, "change_time_ns": None,
                "status": "appeared"}
    doc = {
        "base": {"label": "a.parquet", "device": "H100"}, "new": {"label": "b.parquet", "device": "H100"},
        "cross_device": False,
        "sections": {"totals": {"type": "flat", "rows": [
            {"metric": "device_busy_ns", "base": 1000, "new": 1500, "delta": 500, "change": 0.5}]}},
        "classes": [{"class": "contraction", "base_time_ns": 1000, "new_time_ns": 800, "change_time_ns": -0.2,
                     "status": "changed"}],
        "ops": [], "op_metric": "gpu_time_ns", "ops_matched": 0, "ops_total": 0,
        "kernels": [appeared], "kernels_appeared": [appeared], "kernels_vanished": [],
        "kernel_counts": {"matched": 0, "appeared": 1, "vanished": 0},
    }
    page = render_diff_html(doc)
    assert EVIL not in page and EVIL_TEXT in page
    assert _panel_ids(page) == ["summary", "classes", "kernels"]
    assert '<td class="n worse">+50.0 %</td>' in page  # busy time grew: red
    assert "−" not in page and "-20.0 %" in page
    # a templated kernel name reads short, as on the report page, the whole name on hover
    kernel = "void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<float> >(int)"
    doc["kernels_appeared"] = [dict(appeared, name=kernel)]
    page = render_diff_html(doc)
    assert f'<td class="long" data-t="{esc(kernel)}">CUDAFunctor_add in vectorized_elementwise_kernel</td>' in page


# ---------------------------------------------------------------- the real CLI and a real browser


@pytest.fixture(scope="module")
def cli_pages(synthetic, tmp_path_factory) -> dict[str, Path]:
    """`profkit report --format html` and `profkit diff --format html`, run as a user would (once per module)."""
    folder = tmp_path_factory.mktemp("cli")
    pages = {"report": folder / "report.html", "diff": folder / "diff.html"}
    result = run_profkit("report", str(synthetic), "--format", "html", "-o", str(pages["report"]), timeout=120)
    assert result.returncode == 0, result.stderr
    result = run_profkit("diff", str(synthetic), str(synthetic), "--format", "html", "-o", str(pages["diff"]),
                         timeout=120)
    assert result.returncode == 0, result.stderr
    return pages


def test_cli_writes_html(cli_pages):
    text = cli_pages["report"].read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "roofline" in _panel_ids(text)


def test_cli_diff_writes_html(cli_pages):
    text = cli_pages["diff"].read_text(encoding="utf-8")
    assert EVIL not in text and EVIL_TEXT in text
    assert {"summary", "classes", "kernels"} <= set(_panel_ids(text))


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync",
          "--enable-logging=stderr", "--v=0", "--hide-scrollbars")

#: Appended to a copy of the page: click a header twice (descending, then ascending), hover a roofline point.
_PROBE = """<script>
(function () {
  var th = document.querySelector('#top_kernels th[data-k="self_time_ns"]');
  th.click(); th.click();
  var col = Array.prototype.indexOf.call(th.parentNode.children, th);
  var values = Array.prototype.map.call(th.closest('table').tBodies[0].rows,
    function (r) { return r.cells[col].getAttribute('data-v'); });
  document.body.setAttribute('data-sorted', values.join(','));
  var pt = document.querySelectorAll('circle.pt');
  var evil = Array.prototype.filter.call(pt, function (c) {
    return c.getAttribute('data-t').indexOf('alert') >= 0; })[0];
  var box = evil.getBoundingClientRect();
  evil.dispatchEvent(new MouseEvent('mousemove', {bubbles: true, clientX: box.x + 1, clientY: box.y + 1}));
  document.body.setAttribute('data-tip', document.getElementById('tip').textContent.split('\\n')[0]);
})();
</script></body>"""


def _browse(browser: str, page: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{page.stem}-{len(args)}"
    return subprocess.run([browser, *_FLAGS, f"--user-data-dir={profile}", *args, page.resolve().as_uri()],
                          capture_output=True, text=True, timeout=120)


def _loaded_dom(browser: str, page: Path, tmp_path: Path, *, min_charts: int) -> str:
    """The DOM after scripts ran; fails on any console message, a chart without drawn SVG, or script injection."""
    result = _browse(browser, page, tmp_path, "--dump-dom")
    dom = result.stdout
    console = [line for line in result.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == [], console
    assert 'data-ready="1"' in dom  # report.js ran to its end
    charts = re.findall(r'<div class="chart">(.*?)</div>', dom, re.S)
    assert len(charts) >= min_charts
    for chart in charts:
        assert re.match(r"<svg[^>]*>.*<(rect|circle|path|line)\b", chart, re.S), chart[:200]
    assert not re.search(r"<script>\s*alert\(1\)", dom)  # the kernel name stayed text
    return dom


@pytest.mark.slow
def test_page_in_headless_chromium(cli_pages, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium not installed (make install installs it where apt-get is allowed)")
    report = cli_pages["report"]
    probed = tmp_path / "probed.html"
    probed.write_text(report.read_text(encoding="utf-8").replace("</body>", _PROBE, 1), encoding="utf-8")

    dom = _loaded_dom(browser, probed, tmp_path, min_charts=5)
    # Two kernels by self time: 2 × 1000 ns and 2 × 500 ns; ascending after two clicks.
    assert re.search(r'data-sorted="1000,2000"', dom)
    assert f'data-tip="{EVIL_TEXT}"' in dom  # the tooltip shows the name as text

    _loaded_dom(browser, cli_pages["diff"], tmp_path, min_charts=1)

    shot = tmp_path / "report.png"
    _browse(browser, report, tmp_path, f"--screenshot={shot}", "--window-size=1400,2400")
    assert shot.exists() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_kernel_names_show_short_with_the_whole_name_on_hover():
    sample = Path(__file__).resolve().parents[1] / "sample_traces" / "tiny_transformer_nvidia_h200.parquet"
    traces = [load(sample)]
    document = build_report(traces)
    html = render_html(document, traces, options=ReportOptions())
    whole = next(r["name"] for r in document["top_kernels"] if r["name"].startswith("void at::native::reduce_kernel<"))
    # the cell reads "reduce_kernel" (as the terminal does); hovering shows the whole C++ name
    assert f'<td class="long" data-t="{esc(whole)}">reduce_kernel</td>' in html
    assert f">{esc(whole[:60])}" not in html  # the long name is no longer the cell's text


def test_headers_name_the_quantity_the_cells_carry_the_unit():
    from profkit.report.html.tables import label

    assert [label(k) for k in ("time_ns", "host_time_ns", "energy_j", "avg_power_w", "tokens_per_s",
                               "achieved_flops_per_s", "j_per_token", "dram_bw_util_pct", "count", "ns", "j_per_generated_token", "refresh_ms")] == [
        "time", "host time", "energy", "avg power", "tokens/s", "achieved flops/s", "J/token", "dram bw util %",
        "count", "ns", "J/generated token", "refresh"]
    assert fmt_field("time_ns", 1500) == "1.5 µs"  # (the unit the header no longer says)


def test_a_column_of_records_is_no_cell():
    from profkit.report.html.tables import records_table

    rows = [{"phase": "prefill", "time_ns": 10, "categories": [{"category": "contraction", "time_ns": 7}]},
            {"phase": "decode", "time_ns": 20, "categories": []}]
    html = records_table(rows)
    assert 'data-k="categories"' not in html and "contraction" not in html
    assert 'data-k="phase"' in html and ">decode<" in html


def test_instants_and_percentile_cells_read_as_times():
    # a recorded start is a Unix time in ns: the time of day, not "1795719583 s"
    assert fmt_field("start_ns", 1_795_719_583_123_456_789) == "18:59:43.123 UTC"
    assert fmt_field("end_ns", 2_500_000) == "2.5 ms"  # a time since the start stays a duration
    assert fmt_field("tbt_ns", {"p50": 1_752_369.0, "p99": 29_481_240.7}) == "p50 1.75 ms · p99 29.5 ms"
    assert fmt_field("share_of_idle", 0.0757) == "7.6 %"
    assert fmt_field("refresh_ms", 99.44) == "99.4 ms"
    assert fmt_field("coverage", 0.1557) == "15.6 %"
    assert fmt_field("peak_bandwidth_bytes_per_s", {"0": 4.814e12}) == "device 0: 4.81 TB/s"
    assert fmt_field("peak_source", ["nvml_bus_width_x_memory_clock"]) == "nvml_bus_width_x_memory_clock"
    # a dict of figures: each named as a header would name it, absent ones left out
    assert fmt_field("steps", {"count": 6, "time_ns": 4.25e9, "avg_power_w": 119.0, "tokens": None}) == \
        "count 6 · time 4.25 s · avg power 119 W"


def test_key_value_tables_leave_out_empty_lists():
    from profkit.report.html.tables import kv_table

    html = kv_table({"steps": 6, "notes": []})
    assert ">steps<" in html and "notes" not in html


def test_the_startup_step_is_left_out_of_the_per_step_chart():
    # the H200 sample's step 1 began with the recording (4.2 s of start-up against 9 ms steps)
    sample = Path(__file__).resolve().parents[1] / "sample_traces" / "tiny_transformer_nvidia_h200.parquet"
    traces = [load(sample)]
    html = render_html(build_report(traces), traces, options=ReportOptions())
    assert "Step 1, which began with the recording (start-up), is left out." in html
    columns = re.findall(r">(train_step \d+)<", html)
    assert columns and "train_step 1" not in columns and "train_step 2" in columns


def test_memory_panel_lists_what_was_held_at_the_peak():
    device = {"device": "GPU 0", "rank": 0, "device_type": "gpu", "device_index": 0,
              "allocated_peak_bytes": 3 * 2**30, "allocated_peak_at_ns": 1_500_000,
              "allocated_first_bytes": 2**30, "allocated_last_bytes": 2**30, "allocated_peak_op": "aten::mm",
              "held_at_peak": [{"name": "aten::add", "count": 26, "allocated_bytes": 1.5 * 2**30}],
              "held_at_peak_bytes": 2 * 2**30}
    page = render_html({"memory": {"devices": [device], "phases": [], "top_allocations": [], "reason": None}})
    assert "held at the peak" in page and "aten::add" in page and "1.5 GiB" in page
    assert "(1 GiB from before)" in page  # 3 GiB peak, 2 GiB of it in blocks allocated while recording

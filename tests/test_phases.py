"""The phases analyzer and report sections: windows, TTFT/TBT, bounds, training split and MFU, energy.

Synthetic traces carry hand-counted expectations in the comments; the last
tests record a tiny Llama (transformers) and the bundled example for real and
check the acceptance criteria of the phases issue through the JSON report.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from profkit.analyzers import energy
from profkit.analyzers.classify import classify_events
from profkit.analyzers.hardware import Ceilings, HardwareSpec, resolve_ceilings
from profkit.analyzers.phases import (
    analyze_phases,
    assign_to_windows,
    engine_parser,
    parse_engine_step,
    phase_windows,
)
from profkit.trace.build import build_events

MS = 1_000_000
T0 = 1_700_000_000_000_000_000


def _events(rows: list[dict]) -> pd.DataFrame:
    """A finished events table (rank 0) from partial rows; times in ms after T0."""
    raw = pd.DataFrame(rows)
    raw["start_ns"] = T0 + (raw["start_ms"] * MS).astype(np.int64)
    raw["duration_ns"] = (raw["ms"] * MS).astype(np.int64)
    raw = raw.drop(columns=["start_ms", "ms"])
    gpu = raw["kind"].isin(["kernel", "memcpy", "memset"]).to_numpy()
    if "device_type" in raw:  # telemetry samples name their device
        gpu = gpu | (raw["device_type"] == "gpu").to_numpy()
    raw["device_type"] = np.where(gpu, "gpu", "cpu")
    raw["device_index"] = np.where(gpu, 0, -1)
    raw["process_id"] = 1
    raw["thread_id"] = pd.array([None if g else 1 for g in gpu], dtype="Int64")
    for column in ("batch_size", "token_count"):
        if column in raw:
            raw[column] = raw[column].astype("Int64")
    return build_events(raw).to_pandas().assign(rank=np.int32(0))


def _mark(name, start_ms, ms, *, batch=None, tokens=None, **extra) -> dict:
    return {"kind": "phase", "name": name, "start_ms": start_ms, "ms": ms, "batch_size": batch,
            "token_count": tokens, "extra": json.dumps(extra) if extra else None}


def _op(name, start_ms, ms, shapes=None, dtypes=None, kind="cpu_op", **more) -> dict:
    return {"kind": kind, "name": name, "start_ms": start_ms, "ms": ms, "input_shapes": shapes,
            "input_dtypes": dtypes, **more}


def _toy(peak_fp32: float = 1e9, bandwidth: float = 1e8, what_if: bool = False) -> Ceilings:
    spec = HardwareSpec(key="toy", name="toy device", device_type="gpu",
                        peak_flops_per_s={"fp32": peak_fp32}, memory_bytes_per_s=bandwidth, source="test")
    return Ceilings(primary=spec, datasheet=spec, what_if=what_if)


def _analyze(events: pd.DataFrame, ceilings: Ceilings | None = None, tracks=None):
    ceilings = ceilings or _toy(what_if=True)
    return analyze_phases(events, classify_events(events, ceilings=ceilings), ceilings, tracks)


# ------------------------------------------------------------------ serving-engine annotations


@pytest.mark.parametrize("name, expected", [
    ("step[EXTEND bs=4 toks=1024]", ("sglang", "prefill", 4, 1024)),
    ("step[DECODE bs=8]", ("sglang", "decode", 8, 8)),  # one token per sequence
    ("step[MIXED bs=3 toks=130]", ("sglang", "mixed", 3, 130)),
    ("step[IDLE bs=0]", None),
    ("execute_context_2(600)_generation_0(0)", ("vllm", "prefill", 2, 600)),
    ("execute_context_0(0)_generation_8(8)", ("vllm", "decode", 8, 8)),
    ("execute_context_1(100)_generation_3(3)", ("vllm", "mixed", 4, 103)),  # 1 + 3 requests, 100 + 3 tokens
    ("ProfilerStep#3", None),
])
def test_engine_step_annotations(name, expected):
    assert parse_engine_step(name) == expected


def test_engine_parser_registry_refuses_duplicates():
    with pytest.raises(ValueError, match="twice"):
        engine_parser("sglang")(lambda name: None)


def test_engine_annotations_become_pass_windows():
    events = _events([
        _op("step[EXTEND bs=2 toks=600]", 0, 30, kind="annotation"),
        _op("step[DECODE bs=2]", 40, 10, kind="annotation"),
        _op("step[DECODE bs=2]", 50, 10, kind="annotation"),
    ])
    result = _analyze(events)
    info = result.inference
    assert (info["prefill_passes"], info["decode_passes"]) == (1, 2)
    assert info["prefill_tokens_per_s"] == pytest.approx(600 / 0.030)  # 600 tokens in 30 ms
    assert info["decode_tokens_per_s"] == pytest.approx(4 / 0.020)  # 2 x 1 token twice in 20 ms
    assert info["ttft_ns"] is None and info["generate_calls"] == 0  # no generate calls in a serving trace


# ------------------------------------------------------------------ TTFT and TBT


def test_ttft_and_tbt_hand_counted():
    events = _events([
        _mark("generate", 0, 100, batch=2, tokens=8, generation=7, source="transformers"),
        _mark("prefill", 1, 29, batch=2, tokens=20, generation=7),  # first token at 30 ms
        _mark("decode", 32, 8, batch=2, tokens=2, generation=7),  # tokens at 40, 50, 61 ms
        _mark("decode", 42, 8, batch=2, tokens=2, generation=7),
        _mark("decode", 51, 10, batch=2, tokens=2, generation=7),
    ])
    result = _analyze(events)
    (call,) = result.generations.to_dict("records")
    assert call["ttft_ns"] == 30 * MS  # start of the call (0) to the end of the prefill (30)
    assert call["tbt_ns"] == [10 * MS, 10 * MS, 11 * MS]  # 40-30, 50-40, 61-50
    assert (call["prefill_passes"], call["decode_passes"], call["new_tokens"]) == (1, 3, 4)
    tbt = result.inference["tbt_ns"]
    assert tbt["p50"] == 10 * MS and tbt["p90"] == pytest.approx(10.8 * MS)  # numpy linear: 10 + 0.8 x 1
    assert result.inference["prefill_tokens_per_s"] == pytest.approx(20 / 0.029)
    assert result.inference["decode_tokens_per_s"] == pytest.approx(6 / 0.026)  # 6 tokens in 8 + 8 + 10 ms


def test_ttft_of_a_chunked_prefill_ends_with_its_last_chunk():
    events = _events([
        _mark("generate", 0, 50, batch=1, tokens=2, generation=1),
        _mark("prefill", 0, 10, batch=1, tokens=4, generation=1),
        _mark("prefill", 11, 9, batch=1, tokens=4, generation=1),  # the last chunk ends at 20 ms
        _mark("decode", 22, 5, batch=1, tokens=1, generation=1),
    ])
    (call,) = _analyze(events).generations.to_dict("records")
    assert call["ttft_ns"] == 20 * MS and call["tbt_ns"] == [7 * MS]  # 27 - 20


def test_ttft_waits_for_the_kernels_the_pass_launched():
    # The host returns from the prefill at 10 ms; the GPU runs its last kernel until 25 ms.
    events = _events([
        _mark("generate", 0, 60, batch=1, tokens=2, generation=1),
        _mark("prefill", 0, 10, batch=1, tokens=8, generation=1),
        _op("aten::mm", 2, 3, "[[8,16],[16,16]]", '["float","float"]', correlation_id=11),
        _op("gemm_kernel", 15, 10, kind="kernel", linked_correlation_id=11),
        _mark("decode", 30, 5, batch=1, tokens=1, generation=1),
        _op("aten::mm", 31, 1, "[[1,16],[16,16]]", '["float","float"]', correlation_id=12),
        _op("gemm_kernel", 33, 4, kind="kernel", linked_correlation_id=12),
    ])
    result = _analyze(events)
    (call,) = result.generations.to_dict("records")
    assert call["ttft_ns"] == 25 * MS  # 15 + 10: the first token exists when its kernel ends
    assert call["tbt_ns"] == [12 * MS]  # decode kernel ends at 37; 37 - 25
    prefill = result.phases.set_index("phase").loc["prefill"]
    assert prefill["time_ns"] == 25 * MS and prefill["device_time_ns"] == 10 * MS


# ------------------------------------------------------------------ intensity and bound per phase


def test_prefill_compute_bound_decode_memory_bound_on_h100():
    prefill_mm = ("[[600,512],[512,512]]", '["float","float"]')
    decode_mm = ("[[2,512],[512,512]]", '["float","float"]')
    events = _events([
        _mark("prefill", 0, 10, batch=2, tokens=600),
        _op("aten::mm", 1, 8, *prefill_mm),
        _mark("decode", 20, 5, batch=2, tokens=2),
        _op("aten::mm", 21, 3, *decode_mm),
        _op("aten::mm", 40, 3, *decode_mm),  # outside every window: counted nowhere
    ])
    ceilings = resolve_ceilings({}, gpu_trace=False, requested="h100", calibration={})
    table = _analyze(events, ceilings).phases.set_index("phase")
    # prefill: 2·600·512·512 = 314,572,800 flop over 4·(600·512 + 512·512 + 600·512) = 3,506,176 B -> 89.7
    assert table.loc["prefill", "flops"] == 314_572_800
    assert table.loc["prefill", "arithmetic_intensity"] == pytest.approx(314_572_800 / 3_506_176)
    # decode: 2·2·512·512 = 1,048,576 flop over 4·(2·512 + 512·512 + 2·512) = 1,056,768 B -> 0.99
    assert table.loc["decode", "arithmetic_intensity"] == pytest.approx(1_048_576 / 1_056_768)
    # H100 fp32: 67 TF / 3.35 TB/s = ridge 20 flop/B
    assert table.loc["prefill", "bound"] == "compute" and table.loc["decode", "bound"] == "memory"
    assert table.loc["prefill", "tokens_per_s"] == pytest.approx(600 / 0.010)


def test_assign_to_windows_per_rank_and_edges():
    windows = pd.DataFrame({"rank": [0, 0, 1], "start_ns": [0, 10, 0], "end_ns": [10, 20, 5]})
    pos = assign_to_windows(np.array([0, 9, 10, 20, 3, 3]), np.array([0, 0, 0, 0, 1, 2]), windows)
    assert pos.tolist() == [0, 0, 1, -1, 2, -1]  # [start, end); rank 2 has no windows


# ------------------------------------------------------------------ passes guessed from token shapes


EMBED_PREFILL = ("[[64,16],[2,30],[],[],[]]", '["float","long int","int","bool","bool"]')
EMBED_DECODE = ("[[64,16],[2,1],[],[],[]]", '["float","long int","int","bool","bool"]')


def test_passes_guessed_from_the_first_embedding_of_each_outermost_module_frame():
    events = _events([
        _op("nn.Module: Model_0", 0, 20, kind="python_function"),
        _op("aten::matmul", 0.5, 0.2, "[[1,32,1],[1,1,30]]", '["float","float"]'),  # rotary: [1, 32, 1] is no token shape
        _op("nn.Module: Embedding_0", 1, 5, kind="python_function"),
        _op("aten::embedding", 2, 3, *EMBED_PREFILL),
        _op("nn.Module: Model_0", 30, 10, kind="python_function"),
        _op("aten::embedding", 31, 1, *EMBED_DECODE),
    ])
    windows = phase_windows(events)
    assert windows[["phase", "batch_size", "tokens", "source"]].values.tolist() == [
        ["prefill", 2.0, 60.0, "token_shape"],  # 2 x 30
        ["decode", 2.0, 2.0, "token_shape"],
    ]


def test_no_passes_are_guessed_on_a_training_trace():
    events = _events([
        _op("nn.Module: Model_0", 0, 20, kind="python_function"),
        _op("aten::embedding", 2, 3, *EMBED_PREFILL),
        _op("autograd::engine::evaluate_function: EmbeddingBackward0", 30, 5),
    ])
    assert phase_windows(events).empty


# ------------------------------------------------------------------ training steps


MM = ("[[64,128],[128,64]]", '["float","float"]')  # 2·64·128·64 = 1,048,576 flop
ADD = ("[[64,64],[64,64],[]]", '["float","float","Scalar"]')  # 64·64 = 4,096 flop
EMBED = ("[[100,128],[4,16],[],[],[]]", '["float","long int","int","bool","bool"]')  # 4 samples x 16 tokens


def _training_events(step_mark: bool = True) -> pd.DataFrame:
    rows = [
        _op("aten::embedding", 1, 2, *EMBED),
        _op("aten::mm", 5, 10, *MM),  # forward: 10 ms
        _op("autograd::engine::evaluate_function: MmBackward0", 30, 20),  # backward: 4 ms self
        _op("aten::mm", 32, 16, *MM),  # + 16 ms
        _op("Optimizer.step#SGD.step", 60, 10, kind="annotation"),
        _op("aten::add_", 61, 8, *ADD),  # optimizer: 8 ms
    ]
    if step_mark:
        rows.append(_mark("train_step", 0, 100, step=1, source="optimizer"))
    else:
        rows.append(_op("ProfilerStep#4", 0, 100, kind="annotation"))
    return _events(rows)


def test_training_step_split_gaps_and_mfu_hand_counted():
    result = _analyze(_training_events(), _toy(peak_fp32=1e9))
    (step,) = result.steps.to_dict("records")
    assert (step["forward_ns"], step["backward_ns"], step["optimizer_ns"]) == (12 * MS, 20 * MS, 8 * MS)  # + 2 ms embedding
    assert step["device_busy_ns"] == 40 * MS and step["host_gap_ns"] == 60 * MS  # 100 - (2 + 10 + 20 + 8)
    assert step["flops"] == 2 * 1_048_576 + 4_096
    training = result.training
    assert training["step_time_ns"] == 100 * MS
    # (2,097,152 + 4,096) flop in 0.1 s = 21,012,480 flop/s; / 1e9 peak
    assert training["mfu"] == pytest.approx(21_012_480 / 1e9)
    assert training["samples_per_s"] == pytest.approx(4 / 0.1) and training["tokens_per_s"] == pytest.approx(64 / 0.1)
    assert training["backward_share"] == pytest.approx(0.2)



def test_the_step_that_began_with_the_recording_is_left_out_of_the_figures():
    # profkit's optimizer hook opens step 1 when recording starts: 900 ms of start-up (model build...),
    # then the same 100 ms iteration as step 2. The figures are step 2's; both steps are listed.
    rows = []
    for offset, step, start, length in ((900, 1, 0, 1000), (1000, 2, 1000, 100)):
        rows += [_op("aten::mm", offset + 5, 10, *MM),
                 _op("autograd::engine::evaluate_function: MmBackward0", offset + 30, 20),
                 _op("Optimizer.step#SGD.step", offset + 60, 10, kind="annotation"),
                 _mark("train_step", start, length, step=step, source="optimizer")]
    rows.append({"kind": "sample", "name": "energy_j", "start_ms": 0, "ms": 0, "value": 0.0, "device_type": "gpu"})
    events = _events(rows)
    result = _analyze(events, _toy(peak_fp32=1e9))
    assert result.steps["startup"].tolist() == [True, False] and len(result.steps) == 2
    training = result.training
    assert (training["steps"], training["steps_summarized"]) == (2, 1)
    assert training["step_time_ns"] == 100 * MS  # not the median of 1000 and 100 ms
    assert training["mfu"] == pytest.approx(1_048_576 / 0.1 / 1e9)  # one mm in 0.1 s, not two in 1.1 s
    assert any("start of recording" in note for note in result.notes)
    # the phases table's train_step is the steady steps too: one pass of 100 ms, not 1.1 s over two
    (row,) = result.phases[result.phases["phase"] == "train_step"].to_dict("records")
    assert (row["count"], row["time_ns"]) == (1, 100 * MS)
    # energy per step leaves it out too
    assert energy.step_windows(result.window_columns)["start_ns"].tolist() == [T0 + 1000 * MS]


def test_a_lone_startup_step_is_still_summarized():
    events = _events([_op("aten::mm", 5, 10, *MM), _op("autograd::engine::evaluate_function: MmBackward0", 30, 20),
                      _mark("train_step", 0, 100, step=1, source="optimizer")])
    training = _analyze(events, _toy(peak_fp32=1e9)).training
    assert (training["steps"], training["steps_summarized"], training["step_time_ns"]) == (1, 1, 100 * MS)


def test_a_profiler_step_that_ran_backward_is_a_training_step():
    result = _analyze(_training_events(step_mark=False), _toy(what_if=True))
    assert result.steps["step"].tolist() == [4.0] and result.training["mfu"] is None  # what-if: no MFU
    assert result.phases["phase"].tolist() == ["train_step"]  # the ProfilerStep is labelled a training step
    inference_only = _events([_op("ProfilerStep#1", 0, 10, kind="annotation"), _op("aten::mm", 1, 2, *MM)])
    assert _analyze(inference_only).training is None


# ------------------------------------------------------------------ energy per phase


def test_energy_and_joules_per_token_per_phase():
    # A 100 W device: its energy counter reads 100 J per second, sampled every 100 ms for 2 s.
    samples = [{"kind": "sample", "name": "energy_j", "start_ms": t, "ms": 0, "value": 0.1 * t, "device_type": "gpu"}
               for t in range(0, 2001, 100)]
    rows = [_mark("prefill", 0, 1000, tokens=1000), _mark("decode", 1000, 1000, tokens=100)] + samples
    events = _events(rows)
    tracks = energy.device_tracks(energy.samples_of(events))
    table = _analyze(events, tracks=tracks).phases.set_index("phase")
    assert table.loc["prefill", "energy_j"] == pytest.approx(100.0)  # 1 s at 100 W
    assert table.loc["prefill", "j_per_token"] == pytest.approx(0.1)  # 100 J / 1000 tokens
    assert table.loc["decode", "j_per_token"] == pytest.approx(1.0)  # 100 J / 100 tokens
    assert table.loc["decode", "avg_power_w"] == pytest.approx(100.0)


# ------------------------------------------------------------------ recorded for real, through the report


@pytest.fixture(scope="module")
def llama_report(tmp_path_factory):
    """A tiny random Llama (no download) generating 4 tokens for 2 prompts of 256 tokens, plus a training loop."""
    transformers = pytest.importorskip("transformers")
    import torch

    import profkit
    from profkit.examples.tiny_transformer import TinyLM, train
    from profkit.report import ReportOptions, build_report, to_json

    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=256, hidden_size=512, intermediate_size=1536, num_hidden_layers=2,
                                      num_attention_heads=8, num_key_value_heads=8, max_position_embeddings=512)
    try:
        llama = transformers.LlamaForCausalLM(config).eval()
    except ImportError as exc:  # a transformers that refuses this torch ("requires PyTorch >= 2.6")
        pytest.skip(str(exc).strip().splitlines()[0])
    tiny = TinyLM(vocab=64, dim=32, heads=2, layers=1, ffn=64, ctx=64)
    ids = torch.randint(0, 256, (2, 256))
    path = tmp_path_factory.mktemp("phases") / "llama.parquet"
    with profkit.record(path, telemetry=False):
        train(tiny, steps=3, batch=2, seq=8, device=torch.device("cpu"))
        llama.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=4, min_new_tokens=4,
                       do_sample=False)
    trace = profkit.load(path)
    document = json.loads(to_json(build_report([trace], ReportOptions(hardware="h100"))))
    own = json.loads(to_json(build_report([trace], ReportOptions())))
    return document, own


def test_llama_prefill_compute_bound_decode_memory_bound_in_the_json_report(llama_report):
    document, _ = llama_report
    phases = {p["phase"]: p for p in document["phases"]}
    prefill, decode = phases["prefill"], phases["decode"]
    assert (prefill["count"], prefill["tokens"]) == (1, 512)  # one pass of 2 x 256 tokens
    assert (decode["count"], decode["tokens"], decode["batch_size"]) == (3, 6, 2)  # N-1 = 3 passes of 2 x 1
    assert prefill["bound"] == "compute" and decode["bound"] == "memory"
    assert prefill["arithmetic_intensity"] >= 10 * decode["arithmetic_intensity"]
    assert [p["phase"] for p in document["phases"]][:2] == ["prefill", "decode"]
    assert {c["category"] for c in prefill["categories"]} >= {"contraction", "elementwise"}


def test_llama_inference_and_training_objects(llama_report):
    document, own = llama_report
    inference = document["inference"]
    (call,) = inference["generations"]
    assert call["new_tokens"] == 4 and call["source"] == "transformers"
    assert 0 < inference["ttft_ns"] < call["duration_ns"]
    assert inference["tbt_samples"] == 3 and inference["tbt_ns"]["p50"] > 0
    assert inference["prefill_tokens_per_s"] > inference["decode_tokens_per_s"] > 0
    training = document["training"]
    assert training["steps"] == 3 and training["step_time_ns"] > 0 and training["mfu"] is None  # what-if
    assert training["samples_per_s"] > 0 and training["tokens_per_s"] == pytest.approx(8 * training["samples_per_s"])
    assert [p["phase"] for p in document["phases"]].count("train_step") == 1
    assert 0 < own["training"]["mfu"] < 1  # against the trace's own (CPU) ceiling


# ------------------------------------------------------------------ on a GPU (skipped without one)


@pytest.mark.gpu
def test_gpu_generation_ttft_and_tbt_match_wall_clock(tmp_path):
    """Record a small bf16 generation on the GPU; TTFT/TBT from the trace vs. the script's own clock.

    The loop synchronizes after every pass, so each wall-clock stamp lies just after the pass's last
    kernel: the effective pass ends the analyzer derives from kernel times must agree with them.
    """
    import os
    import time

    import torch

    import profkit
    from profkit.examples.tiny_transformer import TinyLM
    from profkit.report import ReportOptions, build_report, to_json

    if not torch.cuda.is_available():
        if os.environ.get("PROFKIT_REQUIRE_GPU") == "1":
            pytest.fail("PROFKIT_REQUIRE_GPU=1 but torch.cuda.is_available() is False")
        pytest.skip("no CUDA GPU")
    torch.manual_seed(0)
    model = TinyLM(vocab=4096, dim=1024, heads=16, layers=4, ffn=4096, ctx=1024).cuda().to(torch.bfloat16).eval()
    prompt = torch.randint(0, 4096, (4, 512), device="cuda")
    with torch.no_grad():  # warm-up (kernel selection, allocator) outside the recording
        model(prompt, {})
    torch.cuda.synchronize()
    path = tmp_path / "gpu_generation.parquet"
    with profkit.record(path), torch.no_grad():
        cache: dict = {}
        start_ns = time.time_ns()
        logits = model(prompt, cache)
        torch.cuda.synchronize()
        stamps = [time.time_ns()]
        for _ in range(15):
            logits = model(logits[:, -1].argmax(-1, keepdim=True), cache)
            torch.cuda.synchronize()
            stamps.append(time.time_ns())
    document = json.loads(to_json(build_report([profkit.load(path)], ReportOptions())))
    phases = {p["phase"]: p for p in document["phases"]}
    assert (phases["prefill"]["count"], phases["prefill"]["tokens"]) == (1, 2048)  # 4 x 512
    assert (phases["decode"]["count"], phases["decode"]["tokens"]) == (15, 60)  # 15 passes of 4 x 1
    assert phases["prefill"]["arithmetic_intensity"] >= 10 * phases["decode"]["arithmetic_intensity"]
    inference = document["inference"]
    wall_ttft = stamps[0] - start_ns
    wall_tbt = float(np.median(np.diff(stamps)))
    print(f"TTFT trace {inference['ttft_ns'] / 1e6:.3f} ms, wall {wall_ttft / 1e6:.3f} ms; "
          f"TBT p50 trace {inference['tbt_ns']['p50'] / 1e6:.3f} ms, wall {wall_tbt / 1e6:.3f} ms; "
          f"power prefill {phases['prefill']['avg_power_w']} W, decode {phases['decode']['avg_power_w']} W")
    assert inference["ttft_ns"] == pytest.approx(wall_ttft, rel=0.10, abs=500_000)
    assert inference["tbt_ns"]["p50"] == pytest.approx(wall_tbt, rel=0.10, abs=300_000)


def test_user_marks_replace_the_hooks_marks_of_their_label_and_user_generations_get_ttft():
    events = _events([
        _mark("generate", 0, 50, batch=1, tokens=3, source="user"),
        _mark("prefill", 0, 20, batch=1, tokens=10, source="user"),
        _mark("prefill", 1, 18, batch=1, tokens=10, generation=3, source="forward_hook"),  # the same pass, seen by the hook
        _mark("decode", 25, 10, batch=1, tokens=1, generation=3, source="forward_hook"),
        _mark("decode", 36, 10, batch=1, tokens=1, generation=3, source="forward_hook"),
        _mark("generate", 1, 45, batch=1, tokens=3, generation=3, source="inferred"),  # the hook's own call
    ])
    result = _analyze(events)
    table = result.phases.set_index("phase")
    assert table.loc["prefill", "count"] == 1 and table.loc["prefill", "tokens"] == 10  # not 2 passes, 20 tokens
    assert table.loc["generate", "count"] == 1 and table.loc["decode", "count"] == 2
    (call,) = result.generations.to_dict("records")
    assert call["ttft_ns"] == 20 * MS and call["tbt_ns"] == [15 * MS, 11 * MS]  # 35 - 20, 46 - 35


# ------------------------------------------------------------------ generation table: arrays vs the joins they replace


def _reference_generation_table(windows: pd.DataFrame) -> pd.DataFrame:
    """generation_table as pandas groupby/join (its earlier form): the reference for the array version."""
    from profkit.analyzers.phases import DECODE, GENERATE, PREFILL, _link_generations

    columns = ["generation", "rank", "start_ns", "end_ns", "duration_ns", "batch_size", "prefill_passes",
               "decode_passes", "new_tokens", "ttft_ns", "tbt_ns", "source"]
    if not (windows["phase"] == GENERATE).any():
        return pd.DataFrame(columns=columns)
    windows = _link_generations(windows)
    calls = windows[(windows["phase"] == GENERATE) & windows["generation"].notna()]
    passes = windows[windows["phase"].isin((PREFILL, DECODE)) & windows["generation"].notna()]
    if calls.empty:
        return pd.DataFrame(columns=columns)
    origin = int(windows["start_ns"].min())
    passes = passes.assign(start_ns=passes["start_ns"] - origin, effective_end_ns=passes["effective_end_ns"] - origin)
    key = ["rank", "generation"]
    decode = passes[passes["phase"] == DECODE]
    first_decode = decode.groupby(key)["start_ns"].min().rename("first_decode_ns")
    prefill = passes[passes["phase"] == PREFILL].join(first_decode, on=key)
    before = prefill[~(prefill["start_ns"] >= prefill["first_decode_ns"])]
    first_token = before.groupby(key)["effective_end_ns"].max().rename("first_token_ns")
    emissions = pd.concat([
        first_token.reset_index().rename(columns={"first_token_ns": "t_ns"}),
        decode[key + ["effective_end_ns"]].rename(columns={"effective_end_ns": "t_ns"}),
    ], ignore_index=True).sort_values(key + ["t_ns"], kind="stable")
    t_ns = emissions["t_ns"].to_numpy(np.int64)
    same_call = (emissions[key].to_numpy()[1:] == emissions[key].to_numpy()[:-1]).all(axis=1)
    emissions["gap_ns"] = np.r_[np.nan, np.where(same_call, np.diff(t_ns), np.nan)]
    gaps = emissions.dropna(subset=["gap_ns"]).groupby(key)["gap_ns"].agg(list).rename("tbt_ns")
    counts = passes.groupby(key + ["phase"]).size().unstack("phase")
    out = calls.join(first_token, on=key).join(gaps, on=key).join(counts, on=key)
    end = np.maximum(out["end_ns"].to_numpy(np.int64), out["effective_end_ns"].to_numpy(np.int64))
    n_prefill = out[PREFILL].fillna(0).astype(int) if PREFILL in out else pd.Series(0, index=out.index)
    n_decode = out[DECODE].fillna(0).astype(int) if DECODE in out else pd.Series(0, index=out.index)
    return pd.DataFrame({
        "generation": out["generation"].astype(np.int64).to_numpy(), "rank": out["rank"].to_numpy(),
        "start_ns": out["start_ns"].to_numpy(), "end_ns": end, "duration_ns": end - out["start_ns"].to_numpy(np.int64),
        "batch_size": out["batch_size"].to_numpy(), "prefill_passes": n_prefill.to_numpy(),
        "decode_passes": n_decode.to_numpy(), "new_tokens": (n_decode + (n_prefill > 0)).to_numpy(),
        "ttft_ns": out["first_token_ns"].to_numpy(float) - (out["start_ns"].to_numpy(np.int64) - origin),
        "tbt_ns": [g if isinstance(g, list) else [] for g in out["tbt_ns"]], "source": out["source"].to_numpy(),
    }, columns=columns)


def _random_windows(seed: int) -> pd.DataFrame:
    """Generate calls on two ranks with chunked prefills, decodes, ties, a call without passes,
    passes of no call, and user generate marks without an id (linked by time)."""
    rng = np.random.default_rng(seed)
    rows, t = [], T0
    for call in range(6):
        rank = int(rng.integers(0, 2))
        loose = call == 5  # a user's generate mark: no id, its passes found by time
        generation = np.nan if loose else float(call % 4)  # ids repeat across ranks
        begin = t
        for _ in range(int(rng.integers(0, 3))):  # prefill chunks (none: a call without a first token)
            rows.append(("prefill", rank, t, t + 5 * MS, t + 7 * MS, generation))
            t += 6 * MS
        for _ in range(int(rng.integers(0, 5))):
            length = int(rng.choice([2, 3])) * MS  # equal lengths: tied emissions
            rows.append(("decode", rank, t, t + length, t + length + int(rng.integers(0, 2)) * MS, generation))
            t += length
        rows.append(("generate", rank, begin, t + MS, t + MS, generation))
        rows.append(("decode", rank, t + 2 * MS, t + 3 * MS, t + 3 * MS, np.nan))  # a pass of no call
        t += 10 * MS
    frame = pd.DataFrame(rows, columns=["phase", "rank", "start_ns", "end_ns", "effective_end_ns", "generation"])
    frame["batch_size"] = rng.choice([1.0, 2.0, np.nan], len(frame))
    frame["tokens"] = np.nan
    frame["step"] = np.nan
    frame["source"] = np.where(frame["generation"].isna() & (frame["phase"] == "generate"), "user", "forward_hook")
    return frame.sort_values(["rank", "start_ns"], kind="stable").reset_index(drop=True)


@pytest.mark.parametrize("seed", range(8))
def test_generation_table_equals_the_joins_it_replaced(seed):
    from profkit.analyzers.phases import generation_table

    windows = _random_windows(seed)
    fast, reference = generation_table(windows), _reference_generation_table(windows)
    pd.testing.assert_frame_equal(fast.drop(columns=["tbt_ns"]), reference.drop(columns=["tbt_ns"]), check_exact=True)
    assert fast["tbt_ns"].tolist() == reference["tbt_ns"].tolist()


@pytest.mark.parametrize("values", [[3, 5, 7], [1.5, np.nan, 2.0], ["compute", "memory", "latency"], [True, False, True]])
@pytest.mark.parametrize("wanted", [["b", "a"], ["c", "x", "a"], ["x"]])
def test_reindexed_is_what_a_reindex_gives(values, wanted):
    from profkit.analyzers.phases import _reindexed

    table = pd.DataFrame({"phase": ["a", "b", "c"], "v": values})
    reference = table.set_index("phase").reindex(pd.Series(wanted))["v"]
    at = {phase: i for i, phase in enumerate(table["phase"])}
    got = _reindexed(table["v"], np.array([at.get(w, -1) for w in wanted]))
    assert pd.Series(got).dtype == pd.Series(np.asarray(reference.array)).dtype
    assert pd.Series(got).equals(pd.Series(np.asarray(reference.array)))


@pytest.mark.parametrize("window, part, steps", [
    ([0, 0, 1, 1], [0, 1, 0, 1], 2),  # every step ran forward and backward, no optimizer
    ([0, 0, 1], [0, 1, 0], 2),  # step 1 ran no backward
    ([0, 0, 1], [0, 1, 0], 3),  # step 2 ran nothing
    ([0, 1], [0, 0], 2),  # only forward
    ([], [], 2),  # no work at all
])
def test_part_times_are_the_pandas_step_by_part_table(window, part, steps):
    """Per step and part the summed device time, typed as the groupby-unstack table it replaced types it
    (int64 only where no cell was filled in): the JSON of the step list keeps its ints."""
    from profkit.analyzers.training import _part_times

    window, part = np.array(window, np.int64), np.array(part, np.int64)
    time_ns = np.arange(1, len(window) + 1, dtype=np.int64) * 10
    work = pd.DataFrame({"window": window, "part": part, "time_ns": time_ns})
    table = work.groupby(["window", "part"])["time_ns"].sum().unstack("part").reindex(columns=range(3)).fillna(0)
    for got, k in zip(_part_times(window, part, time_ns, steps), range(3)):
        want = table[k].reindex(range(steps)).fillna(0).to_numpy()
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


def test_linking_user_generations_leaves_the_callers_table_alone():
    """User-marked generate calls get ids on a copy: the caller's windows keep their NaN ids."""
    from profkit.analyzers.phases import _link_generations

    windows = pd.DataFrame({"phase": ["generate", "prefill", "decode"], "generation": [np.nan] * 3,
                            "start_ns": [0, 1, 5], "end_ns": [10, 4, 7], "rank": [0, 0, 0]})
    linked = _link_generations(windows)
    assert linked["generation"].tolist() == [-1.0, -1.0, -1.0]  # the call's id, taken by its passes
    assert windows["generation"].isna().all()


def test_tokens_per_step_count_every_micro_batch_of_gradient_accumulation(tmp_path):
    # 4 micro-batches of [8, 16] ids per optimizer step, each through the token table and a position
    # table: 4 x 8 x 16 = 512 tokens and 32 samples a step (the position lookups are not counted again)
    import profkit

    import torch

    emb, pos, head = torch.nn.Embedding(100, 32), torch.nn.Embedding(16, 32), torch.nn.Linear(32, 100)
    opt = torch.optim.SGD([*emb.parameters(), *pos.parameters(), *head.parameters()], lr=0.1)
    with profkit.record(tmp_path / "accum.parquet", telemetry=False):
        for _ in range(3):
            for _ in range(4):
                ids = torch.randint(0, 100, (8, 16))
                hidden = emb(ids) + pos(torch.arange(16).expand(8, 16))
                torch.nn.functional.cross_entropy(head(hidden).view(-1, 100), ids.view(-1)).backward()
            opt.step()
            opt.zero_grad()
    trace = profkit.load(tmp_path / "accum.parquet")
    result = _analyze(trace.events)
    assert result.steps["tokens"].tolist() == [512.0] * 3 and result.steps["samples"].tolist() == [32.0] * 3

"""Flop and byte formulas against hand counts, and counting each op exactly once."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from profkit.analyzers import classify_events, cost
from profkit.analyzers.classes import OpClass, classify_name
from profkit.analyzers.cost import op_cost, parse_inputs
from profkit.analyzers.hardware import Ceilings, spec_by_name
from profkit.trace.build import build_events

F32, BF16 = "float", "c10::BFloat16"


def cost_of(name, shapes, dtypes):
    return op_cost(name, parse_inputs(json.dumps(shapes), json.dumps(dtypes)))


# (op, shapes, dtypes, flops, bytes) — each worked out by hand in the comment.
HAND_COUNTS = [
    # 2·M·N·K = 2·8·4·16 = 1024; bytes (8·16 + 16·4 + 8·4)·4 = (128+64+32)·4 = 896
    ("aten::mm", [[8, 16], [16, 4]], [F32, F32], 1024, 896),
    # bias not counted as flop: 1024; bytes (4 + 128 + 64 + 32)·4 = 912
    ("aten::addmm", [[4], [8, 16], [16, 4], [], []], [F32, F32, F32, "Scalar", "Scalar"], 1024, 912),
    # 3 · 2·8·4·16 = 3072; bytes bf16 (3·8·16 + 3·16·4 + 3·8·4)·2 = (384+192+96)·2 = 1344
    ("aten::bmm", [[3, 8, 16], [3, 16, 4]], [BF16, BF16], 3072, 1344),
    # baddbmm: same 3072 flop; bytes (96 + 384 + 192 + 96)·2 = 1536
    ("aten::baddbmm", [[3, 8, 4], [3, 8, 16], [3, 16, 4], [], []], [BF16, BF16, BF16, "Scalar", "Scalar"], 3072, 1536),
    # rows 2·5 = 10: 2·10·16·4 = 1280; bytes (160 + 64 + 4 + 10·4)·4 = 268·4 = 1072
    ("aten::linear", [[2, 5, 16], [4, 16], [4]], [F32, F32, F32], 1280, 1072),
    # batch broadcast (2,1)x(3) -> 6: 2·6·8·4·16 = 6144; bytes (256 + 192 + 6·8·4)·4 = (256+192+192)·4 = 2560
    ("aten::matmul", [[2, 1, 8, 16], [3, 16, 4]], [F32, F32], 6144, 2560),
    # vector-matrix: [16]·[16,4]: 2·1·4·16 = 128; bytes (16 + 64 + 4)·4 = 336
    ("aten::matmul", [[16], [16, 4]], [F32, F32], 128, 336),
    # sdpa b·h = 8, s = 16, d = 8: QKᵀ 2·8·16·16·8 = 32768, ·V 32768 -> 65536; bytes (3·1024 + 1024)·4 = 16384
    ("aten::_scaled_dot_product_flash_attention", [[2, 4, 16, 8]] * 3, [F32] * 3, 65536, 16384),
    # flash kernel layout [B, S, H, D] = [2, 16, 4, 8]: the same 65536
    ("aten::_flash_attention_forward", [[2, 16, 4, 8]] * 3, [BF16] * 3, 65536, 8192),
    # backward: five products of 32768 = 163840; bytes: 5 inputs of 1024 read + 3 of 1024 written, ·4
    ("aten::_scaled_dot_product_efficient_attention_backward", [[2, 4, 16, 8]] * 5, [F32] * 5, 163840, 32768),
    # conv2d x[1,3,8,8] w[4,3,3,3], output taken as 8×8: 2·1·4·64·3·9 = 13824; bytes (192 + 108 + 256)·4 = 2224
    ("aten::conv2d", [[1, 3, 8, 8], [4, 3, 3, 3]], [F32, F32], 13824, 2224),
    # backward, grad_out [1,4,6,6]: 2 · (2·1·4·36·3·9) = 15552; bytes (144+192+108 read, 192+108 written)·4 = 2976
    ("aten::convolution_backward", [[1, 4, 6, 6], [1, 3, 8, 8], [4, 3, 3, 3]], [F32] * 3, 15552, 2976),
    # layer norm [4,8], affine [8]: 7·32 = 224; bytes (32 + 8 + 8 read, 32 written)·4 = 320
    ("aten::native_layer_norm", [[4, 8], [], [8], [8], []], [F32, "ScalarList", F32, F32, "Scalar"], 224, 320),
    # softmax [4,8]: 4·32 = 128; bytes (32 + 32)·4 = 256
    ("aten::_softmax", [[4, 8], [], []], [F32, "Scalar", "Scalar"], 128, 256),
    # sum over 32 elements: 32 flop; the reduced output is taken as negligible: 128 bytes read
    ("aten::sum", [[4, 8], [], [], []], [F32, "ScalarList", "Scalar", ""], 32, 128),
    # max counts 0 flop (the paper's rule)
    ("aten::amax", [[4, 8], [], []], [F32, "ScalarList", "Scalar"], 0, 128),
    # broadcast add [4,8] + [8]: 32 flop; bytes (32 + 8 + 32)·4 = 288
    ("aten::add", [[4, 8], [8], []], [F32, F32, "Scalar"], 32, 288),
    # in place, a wrapped Python float (0-d double): 32 flop; bytes 32·4 + 8 + 32·4 = 264
    ("aten::mul_", [[4, 8], []], [F32, "double"], 32, 264),
    # where(bool cond, bf16, bf16): 16 flop; bytes 16·1 + 16·2 + 16·2 read + 16·2 written = 112
    ("aten::where", [[4, 4], [4, 4], [4, 4]], ["bool", BF16, BF16], 16, 112),
    # addcmul (self + v·t1·t2): 3 per element = 30; bytes (3·10 read + 10 written)·4 = 160
    ("aten::addcmul_", [[10], [10], [10], []], [F32, F32, F32, "Scalar"], 30, 160),
    # dropout: 1 flop per element, read x, write y and the mask: 10 flop, 3·10·4 = 120 bytes
    ("aten::dropout", [[10], [], []], [F32, "Scalar", "Scalar"], 10, 120),
    # copy_(bf16 dst, fp32 src): reads 10·4, writes 10·2 = 60 bytes, no flop
    ("aten::copy_", [[10], [10], []], [BF16, F32, "Scalar"], 0, 60),
    # fill: writes only
    ("aten::fill_", [[10], []], [F32, "Scalar"], 0, 40),
    # fast-path attention's QKV bias [2,5,24] + [24], q scaled: 240 + 80 = 320 flop; bytes (240+24+240)·4 = 2016
    ("aten::_transform_bias_rescale_qkv", [[2, 5, 24], [24], []], [F32, F32, "Scalar"], 320, 2016),
    # embedding [100,16] with 6 indices (int64): reads 6·8 + 6 rows of 16·4, writes 6 rows: 48 + 2·6·64 = 816
    ("aten::embedding", [[100, 16], [2, 3]], [F32, "long int"], 0, 816),
]


@pytest.mark.parametrize("name, shapes, dtypes, flops, nbytes", HAND_COUNTS, ids=[c[0] for c in HAND_COUNTS])
def test_hand_counts(name, shapes, dtypes, flops, nbytes):
    got = cost_of(name, shapes, dtypes)
    assert (got.flops, got.bytes) == (flops, nbytes)


def test_paper_per_operator_figures():
    # B=8, L=512, N=1024, 16 heads of 64 (REFERENCE.md §1), counted in elements (fp32 bytes / 4).
    x = [8, 512, 1024]
    projection = cost_of("aten::linear", [x, [1024, 1024], [1024]], [F32] * 3)
    scores = cost_of("aten::bmm", [[128, 512, 64], [128, 64, 512]], [F32, F32])
    context = cost_of("aten::bmm", [[128, 512, 512], [128, 512, 64]], [F32, F32])
    mha = 4 * projection.flops + scores.flops + context.flops  # Q, K, V, output projections + two batched products
    # 4·2·4096·1024·1024 + 2·(2·128·512·512·64) = 34.36e9 + 8.59e9 = 42.95e9: the paper's "MHA 43 G flop"
    assert mha == 4 * 2 * 4096 * 1024 * 1024 + 2 * 2 * 128 * 512 * 512 * 64
    assert round(mha / 1e9) == 43
    layer_norm = cost_of("aten::native_layer_norm", [x, [], [1024], [1024], []], [F32, "ScalarList", F32, F32, "Scalar"])
    assert round(layer_norm.flops / 1e6) == 29  # 7 · 4194304 = 29.36 M: the paper's 29 M
    assert layer_norm.flops / (layer_norm.bytes / 4) == pytest.approx(3.5, abs=0.01)  # paper: flop/IO 3.5
    dropout = cost_of("aten::dropout", [x, [], []], [F32, "Scalar", "Scalar"])
    assert round(dropout.flops / 1e6) == 4 and dropout.flops / (dropout.bytes / 4) == pytest.approx(1 / 3)
    residual = cost_of("aten::add", [x, x, []], [F32, F32, "Scalar"])
    assert round(residual.flops / 1e6) == 4 and residual.flops / (residual.bytes / 4) == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    "name, shapes, dtypes",
    [
        ("aten::not_costed", [[4, 4]], [F32]),  # no formula
        ("aten::mm", [[4, 4], [5, 4]], [F32, F32]),  # inner dimensions differ
        ("aten::linear", [[2, 160, 606], [2048, 3906], [2048]], [F32, F32, F32]),  # input 606 vs weight 3906
        ("aten::addmm", [[8], [4, 6], [5, 8]], [F32, F32, F32]),  # 6 vs 5
        ("aten::bmm", [[2, 4, 6], [2, 5, 8]], [F32, F32]),  # 6 vs 5
        ("aten::mm", [[], []], ["TensorList", "Scalar"]),  # no tensors recorded
        ("aten::add", [[4, 3], [5]], [F32, F32]),  # does not broadcast
        ("aten::linear", None, None),  # no shapes recorded
    ],
)
def test_unusable_inputs_cost_nothing(name, shapes, dtypes):
    inputs = parse_inputs(None if shapes is None else json.dumps(shapes), None if dtypes is None else json.dumps(dtypes))
    assert op_cost(name, inputs) == cost.ZERO


def test_parse_inputs():
    parsed = parse_inputs("[[8,512],[],[3]]", '["c10::BFloat16","Scalar","long int"]')
    assert parsed[0] == cost.Tensor((8, 512), "bf16", 2)
    assert parsed[1] is None and parsed[2].dtype == "int64" and parsed[2].nbytes == 24
    assert parsed.dtype == "bf16"
    assert parse_inputs("not json", "[]").args == ()


def test_parse_inputs_reads_what_only_json_reads():
    """Texts orjson refuses (an integer beyond 64 bits, NaN) are read as the standard library reads them."""
    huge = 2**70
    parsed = parse_inputs(f"[[{huge}, 2], [NaN]]", '["float", "float"]')
    assert parsed[0] == cost.Tensor((huge, 2), "fp32", 4) and parsed[1] is None


def test_duplicate_formula_refused():
    with pytest.raises(ValueError, match="twice"):
        cost.formula("aten::mm")(lambda name, x: cost.ZERO)


def test_every_costed_op_has_a_class():
    unclassed = [n for n in cost.costed_names() if classify_name(n).op_class is OpClass.OTHER]
    assert unclassed == []


def test_costs_table_parses_each_unique_key_once(monkeypatch):
    calls, texts = [], []
    real_inputs, real_parse = cost.inputs_of, cost._parse_texts
    monkeypatch.setattr(cost, "inputs_of", lambda s, d, *rest: calls.append(s) or real_inputs(s, d, *rest))
    monkeypatch.setattr(cost, "_parse_texts", lambda labels, codes: texts.extend(labels[c] for c in codes if c >= 0)
                        or real_parse(labels, codes))
    ops = pd.DataFrame(
        {
            "name": ["aten::mm"] * 500 + ["aten::add"] * 300 + ["aten::view"] * 100,
            "input_shapes": ["[[8,16],[16,4]]"] * 250 + ["[[2,2],[2,2]]"] * 250 + ["[[4],[4]]"] * 300 + ["[[4],[]]"] * 100,
            "input_dtypes": ['["float","float"]'] * 800 + ['["float","ScalarList"]'] * 100,
        }
    )
    table = cost.costs_table(ops)
    assert len(calls) == 3  # two mm shapes, one add shape; the view has no formula and is not parsed
    assert "[[4],[]]" not in texts and '["float","ScalarList"]' not in texts
    assert table["flops"].iloc[0] == 1024 and table["flops"].iloc[300] == 16 and table["flops"].iloc[600] == 4


@pytest.mark.parametrize("texts", [
    ["[[2,3]]", "[[1],[2]]", "not json", "[[4]]"],  # one unparsable text: the others still read
    ["[[2,3]]", "[1],[2]", "[[4]]"],  # a text that is two values is no list: not split into two
    ["[[2,3]]", '"[[5]]"', "[[4]]"],  # a JSON string, not a list
])
def test_parse_texts_reads_each_text_alone(texts):
    labels = np.array(texts, dtype=object)
    parsed = cost._parse_texts(labels, [*range(len(texts)), -1, 1])
    expected = {-1: None}
    for code, text in enumerate(texts):
        try:
            expected[code] = json.loads(text)
        except ValueError:
            expected[code] = None
    assert parsed == expected


def _events(rows):
    """A finished events table from (kind, name, start, duration, shapes, dtypes, correlation, linked) rows."""
    raw = pd.DataFrame(rows, columns=["kind", "name", "start_ns", "duration_ns", "input_shapes", "input_dtypes",
                                      "correlation_id", "linked_correlation_id"])
    gpu = raw["kind"].isin(["kernel", "memcpy", "memset"])
    raw["device_type"] = gpu.map({True: "gpu", False: "cpu"})
    raw["device_index"] = gpu.map({True: 0, False: -1})
    raw["process_id"] = 1
    raw["thread_id"] = raw["kind"].map(lambda k: None if k in ("kernel", "memcpy", "memset") else 1)
    return build_events(raw).to_pandas()


LINEAR = ("[[4,16],[8,16],[8]]", '["float","float","float"]')
ADDMM = ("[[8],[4,16],[16,8],[],[]]", '["float","float","float","Scalar","Scalar"]')
COPY = ("[[4,8],[4,8],[]]", '["float","float","Scalar"]')


def test_each_op_is_costed_once_at_the_outermost_costed_op():
    # aten::linear > aten::addmm > aten::copy_ (the CPU addmm copies its bias first): one unit, the linear.
    events = _events(
        [
            ("cpu_op", "aten::linear", 0, 100, *LINEAR, 1, None),
            ("cpu_op", "aten::t", 5, 5, "[[8,16]]", '["float"]', 2, None),
            ("cpu_op", "aten::addmm", 20, 70, *ADDMM, 3, None),
            ("cpu_op", "aten::copy_", 25, 10, *COPY, 4, None),
        ]
    )
    rows = classify_events(events, ceilings=Ceilings(spec_by_name("cpu-generic").scaled_to_cores(1)))
    by_name = rows.set_index("name")
    # 2·4·8·16 = 1024 flop, once, on the linear; nothing on the addmm or its copy
    assert by_name.loc["aten::linear", "flops"] == 1024
    assert by_name.loc["aten::addmm", "flops"] == 0 and by_name.loc["aten::copy_", "bytes"] == 0
    assert rows["flops"].sum() == 1024
    # Their time is the unit's class: the bias copy inside the linear is contraction time.
    assert (rows["category"] == "contraction").all()
    # CPU trace: self times add up to the top-level op (100 = 100-5-70 + 5 + 70-10 + 10)
    assert rows["time_ns"].sum() == 100
    assert list(rows["self_ns"]) == [25, 5, 60, 10]


def test_ops_below_a_unit_are_not_costed(monkeypatch):
    # The linear is the unit: the addmm and copy_ inside it are never parsed; they take its dtype.
    parsed = []
    real = cost.inputs_of
    monkeypatch.setattr(cost, "inputs_of", lambda s, d, *rest: parsed.append(s) or real(s, d, *rest))
    events = _events(
        [
            ("cpu_op", "aten::linear", 0, 100, LINEAR[0], '["c10::BFloat16","c10::BFloat16","c10::BFloat16"]', 1, None),
            ("cpu_op", "aten::addmm", 20, 70, *ADDMM, 3, None),
            ("cpu_op", "aten::copy_", 25, 10, *COPY, 4, None),
        ]
    )
    rows = classify_events(events, ceilings=Ceilings(spec_by_name("cpu-generic").scaled_to_cores(1)))
    assert parsed == [json.loads(LINEAR[0])]
    assert rows["flops"].tolist() == [1024, 0, 0]
    assert rows["dtype"].tolist() == ["bf16"] * 3


def test_an_outer_op_that_costs_nothing_leaves_the_unit_to_the_ops_below():
    # A linear whose shapes its formula cannot use (inner dimensions differ): the addmm below is the unit,
    # and the copy_ below that is not costed.
    events = _events(
        [
            ("cpu_op", "aten::linear", 0, 100, "[[4,15],[8,16],[8]]", LINEAR[1], 1, None),
            ("cpu_op", "aten::addmm", 20, 70, *ADDMM, 3, None),
            ("cpu_op", "aten::copy_", 25, 10, *COPY, 4, None),
            ("cpu_op", "aten::copy_", 110, 10, *COPY, 5, None),  # a unit of its own, beside the linear
        ]
    )
    rows = classify_events(events, ceilings=Ceilings(spec_by_name("cpu-generic").scaled_to_cores(1)))
    assert rows["flops"].tolist() == [0, 1024, 0, 0]
    assert rows["bytes"].tolist()[3] == 2 * 4 * 8 * 4  # the lone copy_ reads and writes 4·8 floats
    ids = rows["event_id"].tolist()
    assert [None if pd.isna(unit) else unit for unit in rows["unit_id"]] == [None, ids[1], ids[1], ids[3]]


def test_kernels_share_their_op_cost_by_duration():
    events = _events(
        [
            ("cpu_op", "aten::addmm", 0, 50, *ADDMM, 1, None),
            ("runtime", "cudaLaunchKernel", 5, 5, None, None, 10, None),
            ("runtime", "cudaLaunchKernel", 20, 5, None, None, 11, None),
            ("kernel", "ampere_sgemm_128x64_nn", 100, 30, None, None, 10, 10),
            ("kernel", "splitKreduce_kernel", 140, 10, None, None, 11, 11),
            ("memcpy", "Memcpy HtoD (Pageable -> Device)", 200, 10, None, None, 12, None),
            ("kernel", "triton_poi_fused_add_0", 300, 10, None, None, 13, None),
        ]
    )
    events.loc[events["kind"] == "memcpy", "bytes"] = 4096
    rows = classify_events(events, ceilings=Ceilings(spec_by_name("a100-80gb")))
    kernels = rows[rows["kind"] != "cpu_op"].set_index("name")
    # addmm: 2·4·8·16 = 1024 flop split 30:10 by duration -> 768 and 256
    assert kernels.loc["ampere_sgemm_128x64_nn", "flops"] == 768
    assert kernels.loc["splitKreduce_kernel", "flops"] == 256
    assert kernels.loc["Memcpy HtoD (Pageable -> Device)", ["category", "flops", "bytes"]].tolist() == ["memory", 0, 4096]
    # no launching op: the kernel's own name decides, and it carries no cost
    assert kernels.loc["triton_poi_fused_add_0", ["category", "fused", "flops"]].tolist() == ["elementwise", True, 0]
    # on a GPU trace the class time is device time only
    assert rows.loc[rows["device_work"], "time_ns"].sum() == 30 + 10 + 10 + 10
    assert rows.loc[rows["kind"] == "cpu_op", "time_ns"].sum() == 0


def test_recurrent_layers_cost_their_gate_products(tmp_path):
    # Every 2-D weight (W_ih, W_hh per layer and direction, gates stacked in rows) multiplies one vector
    # per token: 2 · tokens · Σ rows·cols. Recorded by torch.profiler, imported as any user's trace.
    torch = pytest.importorskip("torch")
    from torch.profiler import ProfilerActivity, profile

    import profkit
    from profkit.collectors.kineto_json import read_kineto
    from profkit.trace.io import write_trace

    torch.manual_seed(0)
    lstm = torch.nn.LSTM(16, 32, num_layers=2, bidirectional=True, batch_first=True)
    gru = torch.nn.GRU(16, 24)
    x = torch.randn(3, 7, 16)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        lstm(x)[0].sum().backward()
        gru(torch.randn(5, 2, 16))
        lstm(torch.nn.utils.rnn.pack_padded_sequence(x, [7, 5, 2], batch_first=True))
    prof.export_chrome_trace(str(tmp_path / "rnn.json"))
    imported = read_kineto(tmp_path / "rnn.json", progress=False)
    trace = profkit.load(write_trace(tmp_path / "rnn.parquet", imported.table, imported.metadata))
    rows = classify_events(trace.events, trace.metadata)
    flops = rows[rows["flops"] > 0].groupby("name", observed=True)["flops"].apply(list).to_dict()

    layer1, layer2 = 4 * 32 * 16 + 4 * 32 * 32, 4 * 32 * 64 + 4 * 32 * 32  # LSTM: 4 gates, H 32, both directions
    assert flops["aten::lstm"] == [2 * 21 * 2 * (layer1 + layer2),  # 3 × 7 tokens
                                   2 * 14 * 2 * (layer1 + layer2)]  # packed: 7 + 5 + 2 tokens
    assert flops["aten::gru"] == [2 * 10 * (3 * 24 * 16 + 3 * 24 * 24)]  # 3 gates, 5 × 2 tokens
    # CPU backward runs one mkldnn_rnn_layer_backward per layer and direction: 2 products per forward one
    if "aten::mkldnn_rnn_layer_backward" in flops:
        assert sorted(flops["aten::mkldnn_rnn_layer_backward"]) == sorted(
            [2 * 2 * 21 * (4 * 32 * 16 + 4 * 32 * 32)] * 2 + [2 * 2 * 21 * (4 * 32 * 64 + 4 * 32 * 32)] * 2)
    assert set(rows.loc[rows["name"].isin(["aten::lstm", "aten::gru"]), "category"]) == {"contraction"}


# ------------------------------------------------------------------ argument values: convolutions, pooling

_CONV_CASES = [  # (module, input shape): strides, paddings, dilations, groups, transposed with output padding
    (lambda t: t.nn.Conv2d(3, 8, 3, stride=2, padding=1), (2, 3, 16, 16)),
    (lambda t: t.nn.Conv2d(4, 8, 3, stride=(2, 1), padding=(0, 2), dilation=2, groups=2), (1, 4, 15, 11)),
    (lambda t: t.nn.Conv1d(3, 6, 5, stride=3), (2, 3, 40)),
    (lambda t: t.nn.Conv3d(2, 4, 3, stride=2, padding=1), (1, 2, 9, 9, 9)),
    (lambda t: t.nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1), (2, 8, 5, 7)),
]


def _recorded(tmp_path, torch, model, x, *, imported: bool):
    """``model(x)`` recorded by torch.profiler and imported, or by profkit's own collector; classified."""
    import profkit
    from profkit.collectors.kineto_json import read_kineto
    from profkit.trace.io import write_trace

    tmp_path.mkdir(parents=True, exist_ok=True)
    if imported:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            model(x)
        prof.export_chrome_trace(str(tmp_path / "trace.json"))
        found = read_kineto(tmp_path / "trace.json", progress=False)
        path = write_trace(tmp_path / "trace.parquet", found.table, found.metadata)
    else:
        with profkit.record(tmp_path / "trace.parquet", telemetry=False) as session:
            model(x)
        path = session.path
    trace = profkit.load(path)
    return classify_events(trace.events, trace.metadata)


@pytest.mark.parametrize("imported", [True, False], ids=["imported", "recorded"])
def test_convolutions_cost_what_torch_counts_from_their_recorded_strides(tmp_path, imported):
    # A strided, dilated, grouped or transposed convolution's output size comes from its recorded
    # arguments; its flop must equal torch.utils.flop_counter's, and its bytes read the input, weight
    # and bias once and write the output (whose real shape torch gives) once.
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    for i, (make, shape) in enumerate(_CONV_CASES):
        torch.manual_seed(0)
        conv, x = make(torch), torch.randn(*shape)
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            out = conv(x)
        rows = _recorded(tmp_path / str(i), torch, conv, x, imported=imported)
        (unit,) = rows[rows["flops"] > 0].itertuples()
        expected_bytes = 4 * (x.numel() + sum(p.numel() for p in conv.parameters()) + out.numel())
        assert (unit.flops, unit.bytes) == (counter.get_total_flops(), expected_bytes), (unit.name, shape)


@pytest.mark.parametrize("imported", [True, False], ids=["imported", "recorded"])
def test_pooling_costs_its_windows(tmp_path, imported):
    # Max pooling compares (0 flop) and reads the input, writes the output; average pooling adds each
    # window and divides (kernel-size flop per output). Output shapes are torch's own.
    torch = pytest.importorskip("torch")
    cases = [(torch.nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True), (2, 4, 10, 9), 0),
             (torch.nn.AvgPool2d((2, 3)), (1, 3, 8, 9), 6),
             (torch.nn.MaxPool1d(2), (2, 3, 11), 0),
             (torch.nn.AdaptiveAvgPool2d((2, 3)), (2, 4, 8, 9), None)]
    for i, (pool, shape, flop_per_output) in enumerate(cases):
        x = torch.randn(*shape)
        out = pool(x)
        rows = _recorded(tmp_path / str(i), torch, pool, x, imported=imported)
        (unit,) = rows[rows["bytes"] > 0].itertuples()
        # adaptive: the windows tile the input: one add per input element, one divide per output
        flops = x.numel() + out.numel() if flop_per_output is None else flop_per_output * out.numel()
        assert (unit.flops, unit.bytes) == (flops, 4 * (x.numel() + out.numel())), (unit.name, shape)
        assert unit.category == "normalization" and unit.bound in ("memory", "latency")


def test_max_pool_backward_routes_gradients_without_flop():
    # (grad_output [1,2,4,4], self [1,2,8,8], ..., indices [1,2,4,4] int64): reads 32·4 + 128·4 + 32·8,
    # writes grad input 128·4: 1408 bytes
    got = cost_of("aten::max_pool2d_with_indices_backward", [[1, 2, 4, 4], [1, 2, 8, 8], [], [], [], [], [],
                                                             [1, 2, 4, 4]], [F32, F32, "ScalarList", "ScalarList",
                                                                             "ScalarList", "ScalarList", "Scalar",
                                                                             "long int"])
    assert (got.flops, got.bytes) == (0, 1408)


def test_without_recorded_values_a_convolution_keeps_its_input_size_and_a_pool_costs_nothing():
    # Older traces (no "Concrete Inputs"): the documented stride-1 "same" assumption; a pool's window is
    # unknown, so it is not costed rather than costed wrong.
    assert cost_of("aten::conv2d", [[1, 3, 8, 8], [4, 3, 3, 3]], [F32, F32]).flops == 13824
    assert cost_of("aten::max_pool2d", [[1, 3, 8, 8], [], [], [], [], []], [F32] + ["ScalarList"] * 4 + ["Scalar"]) \
        == cost.ZERO


def test_argument_values_parse_torch_profilers_texts():
    assert cost.argument_values(["", "[2, 2]", "1", "False", "[True, False]", "0.5", "same"]) == \
        [None, [2, 2], 1, False, [True, False], 0.5, "same"]
    assert cost.argument_values(None) is None


def test_every_formula_reading_values_is_kept_by_the_recorder():
    from profkit.trace.kinds import ARGUMENT_VALUE_OPS

    assert cost.value_op_names() and all(ARGUMENT_VALUE_OPS.match(name) for name in cost.value_op_names())


def test_every_formula_reading_tensor_lists_gets_its_dtype_from_the_recorder():
    from profkit.trace.kinds import TENSOR_LIST_OPS

    assert cost.list_op_names() and all(TENSOR_LIST_OPS.match(name) for name in cost.list_op_names())


@pytest.mark.parametrize("imported", [True, False], ids=["imported", "recorded"])
def test_convolution_backward_costs_what_torch_counts(tmp_path, imported):
    # Grad input and grad weight each cost a forward, only those computed (the first layer's input needs
    # no gradient: output_mask), a transposed convolution's over its input size. torch's counter takes
    # a grouped convolution's grad weight as ungrouped (groups × a forward): there, a forward each.
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    for i, (make, shape) in enumerate(_CONV_CASES):
        for input_grad in (True, False):
            torch.manual_seed(0)
            conv, x = make(torch), torch.randn(*shape, requires_grad=input_grad)
            with FlopCounterMode(display=False) as forward:
                out = conv(x)
            grad = torch.ones_like(out)
            with FlopCounterMode(display=False) as backward:
                out.backward(grad, retain_graph=True)
            rows = _recorded(tmp_path / f"{i}{input_grad}", torch, lambda _: out.backward(grad, retain_graph=True),
                             x, imported=imported)
            (unit,) = rows[(rows["name"] == "aten::convolution_backward") & (rows["flops"] > 0)].itertuples()
            expected = backward.get_total_flops() if conv.groups == 1 else (1 + input_grad) * forward.get_total_flops()
            assert unit.flops == expected, (shape, input_grad)


@pytest.mark.parametrize("imported", [True, False], ids=["imported", "recorded"])
def test_under_autocast_the_op_that_computes_is_the_unit(tmp_path, imported):
    # autocast records aten::linear on the fp32 inputs, then inside it the casts and aten::linear again on
    # bf16 ones. The unit is the inner call: bf16 flop and bytes; the casts are memory work of their own.
    torch = pytest.importorskip("torch")
    linear, x = torch.nn.Linear(64, 32), torch.randn(16, 64)

    def run(inputs):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return linear(inputs)

    rows = _recorded(tmp_path, torch, run, x, imported=imported)
    (unit,) = rows[(rows["name"] == "aten::linear") & (rows["flops"] > 0)].itertuples()
    assert (unit.flops, unit.dtype) == (2 * 16 * 64 * 32, "bf16")
    assert unit.bytes == 2 * (16 * 64 + 32 * 64 + 32 + 16 * 32)  # every operand and the output in bf16
    casts = rows[rows["name"] == "aten::_to_copy"]
    assert len(casts) == 3 and set(casts["category"]) == {"memory"} and (casts["bytes"] > 0).all()


def test_cpu_top_ops_count_calls_not_the_ops_inside_them(tmp_path):
    # On the CPU the roofline's top list is by unit of work: aten::conv2d holds convolution,
    # _convolution, mkldnn_convolution...; three calls are a count of 3, not of every op inside them.
    torch = pytest.importorskip("torch")
    import profkit
    from profkit.report import build_report

    conv, x = torch.nn.Conv2d(3, 4, 3, stride=2), torch.randn(1, 3, 9, 9)
    with profkit.record(tmp_path / "t.parquet", telemetry=False) as session, torch.no_grad():
        for _ in range(3):
            conv(x)
    top = {row["name"]: row for row in build_report([profkit.load(session.path)])["roofline"]["top"]}
    assert top["aten::conv2d"]["count"] == 3 and top["aten::conv2d"]["flops"] == 3 * 2 * 4 * 16 * 3 * 9


def test_nll_loss_backward_writes_a_gradient_the_size_of_its_input():
    # torch's own gradient: [8, 10] fp32 written (zeros, one value per row), the int64 target read.
    import torch

    logp = torch.randn(8, 10).log_softmax(1).requires_grad_()
    target = torch.randint(0, 10, (8,))
    torch.nn.functional.nll_loss(logp, target).backward()
    inputs = cost.parse_inputs("[[],[8,10],[8],[],[],[],[]]", '["float","float","long int","","Scalar","Scalar","float"]')
    assert cost.op_cost("aten::nll_loss_backward", inputs) == cost.Cost(8.0, float(target.nbytes + logp.grad.nbytes))

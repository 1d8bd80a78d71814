"""Quantized inference (torch.ao dynamic quantization): its GEMMs are contraction, its (de)quantization
element-wise work costed from shapes, its weight packing memory work."""

from __future__ import annotations

import json
import textwrap

import pytest
import torch

import profkit
from profkit.analyzers import cost
from profkit.analyzers.classes import classify_name
from profkit.analyzers.classify import classify_events
from conftest import run_profkit


@pytest.mark.parametrize("name, op_class", [
    ("quantized::linear_dynamic", "contraction"),
    ("quantized::linear_relu_dynamic", "contraction"),
    ("quantized::linear", "contraction"),
    ("quantized::conv2d_relu", "contraction"),
    ("quantized::linear_prepack", "memory"),  # packing a weight once: a layout change
    ("quantized::conv2d_unpack", "memory"),
    ("aten::quantize_per_tensor", "elementwise"),
    ("aten::dequantize", "elementwise"),
    ("aten::aminmax", "normalization"),  # the range dynamic quantization takes: a reduction
])
def test_quantized_ops_take_the_class_of_their_work(name, op_class):
    assert classify_name(name).op_class.value == op_class


@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor.*deprecated")  # (torch 2.13: quantized tensors are)
def test_quantize_and_dequantize_bytes_equal_the_real_tensors():
    x = torch.randn(64, 512)
    q = torch.quantize_per_tensor(x, 0.1, 0, torch.qint8)
    quantize = cost.parse_inputs("[[64,512],[],[],[]]", '["float","Scalar","Scalar","Scalar"]')
    assert cost.op_cost("aten::quantize_per_tensor", quantize).bytes == x.nbytes + q.int_repr().nbytes
    dequantize = cost.parse_inputs("[[64,512]]", '["c10::qint8"]')
    assert cost.op_cost("aten::dequantize", dequantize).bytes == q.int_repr().nbytes + q.dequantize().nbytes
    assert cost.op_cost("aten::dequantize", dequantize).flops == 2 * x.numel()


def test_a_dynamically_quantized_model_spends_its_time_in_contraction(tmp_path):
    # Before: quantized::linear_dynamic, its time, was "other" (69 % of such a run).
    script = tmp_path / "quantized.py"
    script.write_text(textwrap.dedent("""
        import torch
        model = torch.nn.Sequential(torch.nn.Linear(256, 512), torch.nn.ReLU(), torch.nn.Linear(512, 256)).eval()
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        with torch.inference_mode():
            for _ in range(5):
                model(torch.randn(32, 256))
    """))
    out = tmp_path / "quantized.parquet"
    assert run_profkit("record", "-o", str(out), "--", "python", str(script), cwd=tmp_path).returncode == 0
    trace = profkit.load(out)
    rows = classify_events(trace.events, trace.metadata)
    linear = rows[rows["name"] == "quantized::linear_dynamic"]
    assert len(linear) == 10 and set(linear["category"].astype(str)) == {"contraction"}
    report = json.loads(run_profkit("report", str(out), "--format", "json").stdout)
    time = {c["category"]: c["time_ns"] for c in report["categories"]}
    assert time["contraction"] >= linear["self_ns"].sum() > 0
    # Its packed weights record no shape: no flop, and the report says so rather than show 0 % flop bare.
    assert any(note.startswith("100% of contraction time has no flop count (quantized::linear_dynamic")
               for note in report["roofline"]["notes"])

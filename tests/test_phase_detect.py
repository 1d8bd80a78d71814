"""Phase detection from forward passes: prefill/decode marks, generate calls, what is not a pass.

Most tests drive profkit.collectors.phase_detect straight into a MarkRecorder
(no profiler: fast); one records in-process and reads the trace file back.
"""

from __future__ import annotations

import json
import sys
import textwrap

import pandas as pd
import pytest
import torch

import profkit
from profkit.collectors import phase_detect
from profkit.collectors.marks import MarkRecorder
from profkit.examples.tiny_transformer import TinyLM, generate


@pytest.fixture
def recorder():
    marks = MarkRecorder()
    phase_detect.install(marks)
    try:
        yield marks
    finally:
        phase_detect.uninstall()


def _marks(recorder: MarkRecorder) -> list[dict]:
    phase_detect.uninstall()  # closes an inferred generation still open
    frame = recorder.frame()
    return [
        {"name": r.name, "batch": None if pd.isna(r.batch_size) else int(r.batch_size),
         "tokens": None if pd.isna(r.token_count) else int(r.token_count),
         "start_ns": int(r.start_ns), "end_ns": int(r.start_ns + r.duration_ns),
         "extra": json.loads(r.extra) if isinstance(r.extra, str) else {}}
        for r in frame.itertuples()
    ]


def _tiny_lm() -> TinyLM:
    torch.manual_seed(0)
    return TinyLM(vocab=64, dim=32, heads=2, layers=2, ffn=64, ctx=64).eval()


def test_hand_written_kv_cache_loop_gives_one_prefill_and_n_minus_1_decodes(recorder):
    model = _tiny_lm()
    prompt = torch.randint(0, 64, (2, 12))
    generate(model, prompt, new_tokens=5)  # the bundled example's loop: model(input_ids, cache) positionally
    marks = _marks(recorder)
    passes = [m for m in marks if m["name"] in ("prefill", "decode")]
    assert [m["name"] for m in passes] == ["prefill"] + ["decode"] * 4
    assert (passes[0]["batch"], passes[0]["tokens"]) == (2, 24)  # 2 sequences x 12 prompt tokens
    assert all((m["batch"], m["tokens"]) == (2, 2) for m in passes[1:])  # 2 sequences x 1 token
    assert [m["extra"]["pass"] for m in passes] == [0, 1, 2, 3, 4]
    (call,) = [m for m in marks if m["name"] == "generate"]
    assert call["extra"]["source"] == "inferred" and call["extra"]["decode_passes"] == 4
    assert call["tokens"] == 10  # 5 new tokens x 2 sequences
    assert call["start_ns"] == passes[0]["start_ns"] and call["end_ns"] == passes[-1]["end_ns"]
    assert {m["extra"]["generation"] for m in passes} == {call["extra"]["generation"]}


def test_a_new_prefill_starts_a_new_generation(recorder):
    model = _tiny_lm()
    generate(model, torch.randint(0, 64, (2, 8)), new_tokens=3)
    generate(model, torch.randint(0, 64, (1, 6)), new_tokens=2)
    calls = [m for m in _marks(recorder) if m["name"] == "generate"]
    assert [(c["batch"], c["extra"]["decode_passes"]) for c in calls] == [(2, 2), (1, 1)]
    assert calls[0]["extra"]["generation"] != calls[1]["extra"]["generation"]


def test_a_training_forward_is_not_a_pass_and_a_lone_prefill_is_no_generation(recorder):
    model = _tiny_lm().train()
    tokens = torch.randint(0, 64, (2, 9))
    model(tokens).sum().backward()  # grad enabled: a training forward, not a generation pass
    with torch.inference_mode():
        model(tokens)  # an eval forward: prefill-shaped, but without decodes it is no generation
    marks = _marks(recorder)
    assert [(m["name"], m["batch"], m["tokens"]) for m in marks] == [("prefill", 2, 18)]  # 2 x 9


def test_embeddings_in_are_a_pass_of_a_model_with_submodules(recorder):
    model = _tiny_lm()
    with torch.no_grad():
        model.blocks[0](torch.randn(3, 5, 32), None, 0)  # float [batch, seq, hidden] into a module with children
    marks = _marks(recorder)
    assert [(m["name"], m["batch"], m["tokens"], m["extra"]["seq_len"]) for m in marks] == [("prefill", 3, 15, 5)]


def test_leaf_module_on_float_input_and_non_token_inputs_are_ignored(recorder):
    linear = torch.nn.Linear(4, 4)
    with torch.no_grad():
        linear(torch.randn(2, 3, 4))  # a leaf layer, not a model
        torch.nn.Sequential(torch.nn.Flatten())(torch.zeros(2, 3, 4, 4))  # 4-D images
        torch.nn.Embedding(8, 4)(torch.zeros(5, dtype=torch.long))  # 1-D ids
    assert _marks(recorder) == []


def test_global_hooks_without_keyword_arguments_as_on_torch_2_4(monkeypatch):
    """torch 2.4's register_module_forward_hook takes no with_kwargs (install raised there, so no pass was
    ever found): its hooks get (module, args, result), result None when forward raised. Here the newer
    torch is made to look like it; the suite passes on a real 2.4 too (docs/recording.md)."""
    from torch.nn.modules import module as nn_module

    original = nn_module.register_module_forward_hook

    def without_kwargs(hook, *, always_call: bool = False):  # 2.4's signature
        return original(hook, always_call=always_call)

    monkeypatch.setattr(nn_module, "register_module_forward_hook", without_kwargs)
    marks = MarkRecorder()
    phase_detect.install(marks)
    try:
        class Boom(torch.nn.Module):
            def forward(self, ids):
                raise RuntimeError("boom")

        with torch.no_grad(), pytest.raises(RuntimeError):
            Boom()(torch.zeros(2, 3, dtype=torch.long))  # (no stale depth left behind)
        generate(_tiny_lm(), torch.randint(0, 64, (2, 12)), new_tokens=3)  # ids passed positionally
    finally:
        phase_detect.uninstall()
    passes = [m for m in _marks(marks) if m["name"] in ("prefill", "decode")]
    assert [(m["name"], m["tokens"]) for m in passes] == [("prefill", 24), ("decode", 2), ("decode", 2)]


def test_nested_calls_are_seen_once_and_an_exception_leaves_no_stale_depth(recorder):
    class Boom(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = torch.nn.Embedding(8, 4)

        def forward(self, ids):
            self.inner(ids)
            raise RuntimeError("boom")

    model = _tiny_lm()
    with torch.no_grad():
        with pytest.raises(RuntimeError, match="boom"):  # the user's exception passes through untouched
            Boom()(torch.zeros(2, 3, dtype=torch.long))
        model(torch.randint(0, 64, (2, 4)))
    marks = _marks(recorder)
    assert [(m["name"], m["tokens"]) for m in marks] == [("prefill", 8)]  # the failed pass is not recorded


def test_install_uninstall_leave_no_hooks_behind():
    from torch.nn.modules import module as nn_module

    before = (len(nn_module._global_forward_pre_hooks), len(nn_module._global_forward_hooks))
    phase_detect.install(MarkRecorder())
    phase_detect.install(MarkRecorder())  # a second install replaces the first
    assert len(nn_module._global_forward_pre_hooks) == before[0] + 1
    phase_detect.uninstall()
    phase_detect.uninstall()
    assert (len(nn_module._global_forward_pre_hooks), len(nn_module._global_forward_hooks)) == before


# ------------------------------------------------------------------ Hugging Face generate()


def _tiny_llama(transformers):
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
    try:
        return transformers.LlamaForCausalLM(config).eval()
    except ImportError as exc:  # a transformers that refuses this torch ("requires PyTorch >= 2.6")
        pytest.skip(str(exc).strip().splitlines()[0])


def test_hf_generate_gives_one_prefill_and_n_minus_1_decodes(recorder):
    transformers = pytest.importorskip("transformers")
    model = _tiny_llama(transformers)
    from transformers.generation.utils import GenerationMixin

    phase_detect.install(recorder)  # transformers is imported now: patched at install
    assert hasattr(GenerationMixin.__dict__["generate"], "__profkit_original__")
    ids = torch.randint(0, 128, (2, 10))
    model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=5, min_new_tokens=5, do_sample=False)
    marks = _marks(recorder)
    assert not hasattr(GenerationMixin.__dict__["generate"], "__profkit_original__")  # unpatched by uninstall
    passes = [m for m in marks if m["name"] in ("prefill", "decode")]
    assert [m["name"] for m in passes] == ["prefill"] + ["decode"] * 4
    assert (passes[0]["batch"], passes[0]["tokens"]) == (2, 20)
    assert all((m["batch"], m["tokens"]) == (2, 2) for m in passes[1:])
    assert {m["extra"]["input"] for m in passes} == {"input_ids"}
    (call,) = [m for m in marks if m["name"] == "generate"]
    assert call["extra"]["source"] == "transformers" and call["tokens"] == 10  # 5 new tokens x 2
    assert call["start_ns"] <= passes[0]["start_ns"] and call["end_ns"] >= passes[-1]["end_ns"]


def test_hf_chunked_prefill_passes_are_all_prefill(recorder):
    transformers = pytest.importorskip("transformers")
    model = _tiny_llama(transformers)
    phase_detect.install(recorder)
    if "prefill_chunk_size" not in transformers.GenerationConfig().to_dict():
        pytest.skip("this transformers has no chunked prefill")
    ids = torch.randint(0, 128, (2, 9))
    model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=3, min_new_tokens=3, do_sample=False,
                   prefill_chunk_size=4)
    passes = [m for m in _marks(recorder) if m["name"] in ("prefill", "decode")]
    # 9 prompt tokens in chunks of 4, 4, 1: the last chunk is one token long and still a prefill.
    assert [(m["name"], m["extra"]["seq_len"]) for m in passes] == [
        ("prefill", 4), ("prefill", 4), ("prefill", 1), ("decode", 1), ("decode", 1)]


def test_hf_generate_without_kv_cache_decodes_after_its_first_pass(recorder):
    # use_cache=False: every pass re-reads the whole sequence (10, 11, ... tokens) and generates one
    # token; only the first is a prefill, and a decode pass counts the tokens it generates.
    transformers = pytest.importorskip("transformers")
    model = _tiny_llama(transformers)
    phase_detect.install(recorder)
    ids = torch.randint(0, 128, (2, 10))
    model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=4, min_new_tokens=4, do_sample=False,
                   use_cache=False)
    marks = _marks(recorder)
    passes = [m for m in marks if m["name"] in ("prefill", "decode")]
    assert [(m["name"], m["extra"]["seq_len"], m["tokens"]) for m in passes] == [
        ("prefill", 10, 20), ("decode", 11, 2), ("decode", 12, 2), ("decode", 13, 2)]
    (call,) = [m for m in marks if m["name"] == "generate"]
    assert call["extra"]["decode_passes"] == 3 and call["tokens"] == 8  # 4 new tokens x 2


def test_hand_written_loop_without_kv_cache_is_one_generation(recorder):
    # model(whole sequence) each step: 8, 9, 10 tokens, batch 2; then a new prompt starts a new one
    model = _tiny_lm()
    with torch.no_grad():
        for prompt_len, steps in ((8, 3), (5, 2)):
            ids = torch.randint(0, 64, (2, prompt_len))
            for _ in range(steps):
                next_token = model(ids)[:, -1].argmax(-1, keepdim=True)
                ids = torch.cat([ids, next_token], dim=1)
    marks = _marks(recorder)
    passes = [(m["name"], m["extra"]["seq_len"]) for m in marks if m["name"] in ("prefill", "decode")]
    assert passes == [("prefill", 8), ("decode", 9), ("decode", 10), ("prefill", 5), ("decode", 6)]
    calls = [m for m in marks if m["name"] == "generate"]
    assert [(c["extra"]["decode_passes"], c["tokens"]) for c in calls] == [(2, 6), (1, 4)]


def test_generation_module_imported_after_recording_starts_is_patched(tmp_path, monkeypatch):
    # `profkit record -- python prog.py` starts before prog.py imports transformers: an import hook
    # patches GenerationMixin when its module loads. A stand-in module keeps this fast and in-process.
    (tmp_path / "fake_generation_utils.py").write_text(textwrap.dedent("""
        class GenerationMixin:
            def generate(self, model, ids, steps):
                model(ids)
                for _ in range(steps):
                    model(ids[:, :1])
                return "done"
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(phase_detect, "_GENERATION_MODULE", "fake_generation_utils")
    monkeypatch.delitem(sys.modules, "fake_generation_utils", raising=False)
    marks = MarkRecorder()
    phase_detect.install(marks)
    import fake_generation_utils  # noqa: E402 - imported while recording, on purpose

    mixin = fake_generation_utils.GenerationMixin
    assert hasattr(mixin.__dict__["generate"], "__profkit_original__")
    with torch.no_grad():
        assert mixin().generate(_tiny_lm(), torch.zeros(2, 3, dtype=torch.long), 2) == "done"
    names = [m["name"] for m in _marks(marks)]  # uninstalls
    assert not hasattr(mixin.__dict__["generate"], "__profkit_original__")
    assert names == ["prefill", "decode", "decode", "generate"]
    assert not any(isinstance(f, phase_detect._PatchOnImport) for f in sys.meta_path)


# ------------------------------------------------------------------ end to end through the trace file


def test_recorded_phases_survive_the_trace_file(tmp_path):
    path = tmp_path / "gen.parquet"
    model = _tiny_lm()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with profkit.record(path, telemetry=False, record_shapes=False):
        for _ in range(3):  # a training loop: one train_step per optimizer step
            model(torch.randint(0, 64, (2, 8))).sum().backward()
            optimizer.step()
            optimizer.zero_grad()
        model.eval()
        generate(model, torch.randint(0, 64, (2, 6)), new_tokens=4)
    phases = profkit.load(path).phases
    names = phases["name"].astype(str).tolist()
    assert names.count("train_step") == 3
    assert names.count("prefill") == 1 and names.count("decode") == 3 and names.count("generate") == 1
    prefill = phases[phases["name"].astype(str) == "prefill"].iloc[0]
    assert (int(prefill["batch_size"]), int(prefill["token_count"])) == (2, 12)
    assert json.loads(prefill["extra"])["module"] == "TinyLM"


def test_a_compiled_model_is_one_pass_and_torch_compile_does_not_warn_about_our_hooks(recorder):
    import warnings

    from torch._dynamo.utils import counters

    model = _tiny_lm()
    torch._dynamo.reset()
    counters.clear()
    compiled = torch.compile(model, backend="eager")  # dynamo only: no C++ toolchain needed
    with warnings.catch_warnings(record=True) as caught, torch.no_grad():
        warnings.filterwarnings("always", category=UserWarning, append=True)  # behind the filter install() added
        compiled(torch.randint(0, 64, (2, 8)))
    marks = _marks(recorder)
    assert [(m["name"], m["tokens"]) for m in marks] == [("prefill", 16)]  # the wrapper and the model: one pass
    assert not [w for w in caught if "global hooks" in str(w.message)]
    # Dynamo traces the inner modules' hooks: their bookkeeping must not break the user's graph (it did
    # on torch 2.4, which cannot trace a thread-local's attributes or time.time_ns: 13 breaks).
    assert not counters["graph_break"] and counters["stats"]["unique_graphs"] == 1

"""Inference phases from the program's own forward passes, without code changes.

``install(recorder)`` registers a global module forward pre-hook and forward
hook. They track the module-call nesting depth per thread and look only at
the OUTERMOST call (the model, not its layers); a nested call costs two
attribute updates. An outermost call made without grad (``torch.no_grad()``
or ``inference_mode``; a training forward is not a generation pass) whose
token input is ``[batch, seq]`` ids or ``[batch, seq, hidden]`` embeddings is
one pass: ``prefill`` when seq > 1, ``decode`` when seq == 1, recorded as a
phase mark with batch size and token count (batch × seq).

Token input, first found: the keyword arguments of ``_TOKEN_KWARGS`` (the
names transformers 4.x and 5.x pass; not seen on torch 2.4, whose global hooks get no keyword
arguments), else the first positional tensor — an
integer ``[batch, seq]`` tensor, or a float ``[batch, seq, hidden]`` one when
the module has submodules (a whole model, not a lone layer).

Generations: Hugging Face ``GenerationMixin.generate`` is wrapped (patched
when transformers is already imported, or when it gets imported during the
recording; unpatched by ``uninstall``) and records a ``generate`` mark over
the whole call; inside it the passes of ``_prefill`` are prefill whatever
their length (a chunked prefill's last chunk may be one token). For
hand-written loops a generation is inferred: a prefill followed by decodes
(another prefill starts the next one); its ``generate`` mark runs from the
start of the first pass to the end of the last, and is written only when the
generation decoded at least once.

Nothing here may raise into the user's program: bookkeeping errors are
swallowed and the pass is not recorded.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable

#: Keyword names of the token input, in the order they are looked up.
_TOKEN_KWARGS = ("input_ids", "inputs_embeds", "decoder_input_ids", "decoder_inputs_embeds")

_GENERATION_MODULE = "transformers.generation.utils"

_NO_KWARGS: dict = {}  # (read only)

#: torch warns on every torch.compile(module) call while global hooks exist; the depth tracking
#: already sees the compiled wrapper as the outermost call, so the warning is noise to the user.
_COMPILE_WARNING = r"Using `torch\.compile\(module\)` when there are global hooks"

#: GenerationMixin methods wrapped while recording -> what a call of it is.
#: "generate": one generation; "prefill": every pass inside is a prefill.
_PATCHES = {"generate": "generate", "_prefill": "prefill", "_prefill_chunking": "prefill"}


class _ThreadState(threading.local):
    depth = 0  # module-call nesting depth on this thread
    skip = False  # the outermost call runs with grad enabled (training) or under compilation
    start_ns = 0  # start of the outermost call
    generate_depth = 0  # nesting of wrapped generate() calls (a subclass calling super().generate)
    prefill_depth = 0  # inside a wrapped _prefill


@dataclass
class _Generation:
    gen_id: int
    source: str  # "transformers" or "inferred"
    start_ns: int
    end_ns: int = 0
    batch: int | None = None
    prefills: int = 0
    decodes: int = 0
    module: str | None = None
    last_seq: int = 0  # tokens the last pass read


class PhaseDetector:
    """The hooks and patches of one recording; ``install``/``uninstall`` come in pairs."""

    def __init__(self, recorder) -> None:
        import torch

        self._recorder = recorder
        self._torch = torch
        self._grad_enabled = torch.is_grad_enabled
        self._is_compiling = _compiling_probe(torch)
        self._tls = _ThreadState()
        self._handles: list = []
        self._open: dict[int, _Generation] = {}  # thread ident -> the generation in progress
        self._ids = itertools.count(1)
        self._patched: dict[str, Callable] = {}  # GenerationMixin attribute -> original function
        self._finder: _PatchOnImport | None = None
        self._mixin: Any = None
        self._warning_filter: tuple | None = None
        self._int_dtypes = frozenset({torch.int64, torch.int32, torch.int16, torch.uint8, torch.int8})

    # -- lifecycle ---------------------------------------------------------
    def install(self) -> None:
        if self._handles:
            return
        from torch.nn.modules import module as nn_module

        takes_kwargs = "with_kwargs" in inspect.signature(nn_module.register_module_forward_hook).parameters
        self._handles = [
            nn_module.register_module_forward_pre_hook(self._pre),
            nn_module.register_module_forward_hook(self._post, with_kwargs=True, always_call=True) if takes_kwargs
            else nn_module.register_module_forward_hook(self._post_without_kwargs, always_call=True),
        ]
        warnings.filterwarnings("ignore", message=_COMPILE_WARNING, category=UserWarning)
        self._warning_filter = warnings.filters[0]
        generation = sys.modules.get(_GENERATION_MODULE)
        if generation is not None:
            self._patch_generation(generation)
        else:
            self._finder = _PatchOnImport(self)
            sys.meta_path.insert(0, self._finder)

    def uninstall(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        if self._warning_filter in warnings.filters:
            warnings.filters.remove(self._warning_filter)
            getattr(warnings, "_filters_mutated", lambda: None)()  # invalidate caches, as filterwarnings does
        self._warning_filter = None
        if self._finder is not None:
            try:
                sys.meta_path.remove(self._finder)
            except ValueError:
                pass
            self._finder = None
        self._unpatch_generation()
        for tid in list(self._open):
            self._close_inferred(tid)
        self._recorder = None

    # -- hooks (every module call: keep the nested path to a few attribute ops)
    def _pre(self, module, args) -> None:
        # Under Dynamo's tracing a module's hooks are traced too: is_compiling() is True there, so no
        # bookkeeping enters the graph (torch 2.4 cannot trace it: a graph break per module). The
        # compiled module's own call runs eagerly, with its hooks: that call is the pass.
        if self._is_compiling():
            return None
        tls = self._tls
        depth = tls.depth
        tls.depth = depth + 1
        if depth:
            return None
        try:
            tls.skip = self._grad_enabled() or self._is_compiling()
            tls.start_ns = time.time_ns()
        except Exception:  # noqa: BLE001 - never raise into the user's program
            tls.skip = True
        return None

    def _post(self, module, args, *rest) -> None:
        # (module, args, kwargs, result) normally; (module, args, result) when forward raised.
        if self._is_compiling():
            return None
        tls = self._tls
        depth = tls.depth - 1
        tls.depth = depth if depth > 0 else 0
        if depth > 0 or tls.skip or len(rest) != 2:
            return None
        try:
            self._on_pass(module, args, rest[0], tls)
        except Exception:  # noqa: BLE001 - a pass we cannot read is a pass not recorded
            pass
        return None

    def _post_without_kwargs(self, module, args, result) -> None:
        # torch 2.4's global hooks take no with_kwargs: (module, args, result), result None when forward
        # raised (torch sets it before calling forward). Token ids passed by keyword are not seen there.
        return self._post(module, args, _NO_KWARGS, result) if result is not None else self._post(module, args, None)

    # -- one outermost inference pass ----------------------------------------
    def _on_pass(self, module, args, kwargs, tls: _ThreadState) -> None:
        recorder = self._recorder
        if recorder is None:
            return
        found = token_input(module, args, kwargs, self._torch.Tensor, self._int_dtypes)
        if found is None:
            return
        end_ns = time.time_ns()
        input_name, batch, seq = found
        tid = threading.get_ident()
        gen = self._open.get(tid)
        # A pass that reads the last pass's tokens and one more decodes without a KV cache
        # (generate(use_cache=False), or a loop that re-feeds the whole sequence).
        recomputes = gen is not None and gen.batch == batch and seq == gen.last_seq + 1
        if tls.generate_depth and gen is not None:  # inside a wrapped generate(): its first pass reads the prompt
            first = gen.prefills + gen.decodes == 0
            if first or tls.prefill_depth > 0:
                prefill = True
            elif self._prefill_wrapped():  # transformers marks its prefill passes: the others decode
                prefill = False
            else:  # older transformers: a chunked prefill's chunks come before the first decode
                prefill = seq > 1 and gen.decodes == 0 and not recomputes
        else:
            prefill = seq > 1 and not recomputes
            if prefill or gen is None:
                if gen is not None:
                    self._close_inferred(tid)
                gen = self._open[tid] = _Generation(next(self._ids), "inferred", tls.start_ns)
        phase = "prefill" if prefill else "decode"
        pass_index = gen.prefills + gen.decodes
        if prefill:
            gen.prefills += 1
        else:
            gen.decodes += 1
        gen.end_ns = end_ns
        gen.batch = gen.batch or batch
        gen.last_seq = seq
        gen.module = gen.module or type(module).__name__
        # A decode pass generates one token per sequence, whatever it read (seq_len > 1: no KV cache).
        recorder.add(
            phase, tls.start_ns, end_ns, batch_size=batch, token_count=batch * seq if prefill else batch,
            extra={"source": "forward_hook", "module": type(module).__name__, "input": input_name,
                   "seq_len": seq, "generation": gen.gen_id, "pass": pass_index},
        )

    def _prefill_wrapped(self) -> bool:
        return "_prefill" in self._patched or "_prefill_chunking" in self._patched

    def _close_inferred(self, tid: int) -> None:
        gen = self._open.pop(tid, None)
        if gen is None or gen.source != "inferred" or gen.decodes == 0:
            return  # a lone prefill (an eval forward, say) is not a generation
        self._emit_generate(gen, error=None)

    def _emit_generate(self, gen: _Generation, error: str | None) -> None:
        recorder = self._recorder
        if recorder is None:
            return
        tokens_each = gen.decodes + (1 if gen.prefills else 0)  # one token per decode, one from the prefill
        extra: dict[str, Any] = {"source": gen.source, "generation": gen.gen_id, "prefill_passes": gen.prefills,
                                 "decode_passes": gen.decodes, "module": gen.module}
        if error:
            extra["error"] = error
        recorder.add("generate", gen.start_ns, gen.end_ns or time.time_ns(), batch_size=gen.batch,
                     token_count=gen.batch * tokens_each if gen.batch else None, extra=extra)

    # -- Hugging Face generate() ---------------------------------------------
    def _patch_generation(self, generation_module) -> None:
        mixin = getattr(generation_module, "GenerationMixin", None)
        if mixin is None or self._patched:
            return
        for attribute, role in _PATCHES.items():
            original = mixin.__dict__.get(attribute)
            if original is None or getattr(original, "__profkit_original__", None) is not None:
                continue
            wrapper = (self._wrap_generate if role == "generate" else self._wrap_prefill)(original)
            wrapper.__profkit_original__ = original
            setattr(mixin, attribute, wrapper)
            self._patched[attribute] = original
        self._mixin = mixin

    def _unpatch_generation(self) -> None:
        if not self._patched:
            return
        for attribute, original in self._patched.items():
            current = self._mixin.__dict__.get(attribute)
            if getattr(current, "__profkit_original__", None) is original:
                setattr(self._mixin, attribute, original)
        self._patched = {}

    def _wrap_generate(self, original: Callable) -> Callable:
        detector = self

        @functools.wraps(original)
        def generate(*args, **kwargs):
            tls = detector._tls
            if detector._recorder is None or tls.generate_depth:
                return original(*args, **kwargs)
            tid = threading.get_ident()
            try:
                detector._close_inferred(tid)
                gen = detector._open[tid] = _Generation(next(detector._ids), "transformers", time.time_ns())
            except Exception:  # noqa: BLE001
                return original(*args, **kwargs)
            tls.generate_depth += 1
            error = None
            try:
                return original(*args, **kwargs)
            except BaseException as exc:
                error = type(exc).__name__
                raise
            finally:
                tls.generate_depth -= 1
                try:
                    detector._open.pop(tid, None)
                    gen.end_ns = time.time_ns()
                    detector._emit_generate(gen, error)
                except Exception:  # noqa: BLE001
                    pass

        return generate

    def _wrap_prefill(self, original: Callable) -> Callable:
        detector = self

        @functools.wraps(original)
        def prefill(*args, **kwargs):
            tls = detector._tls
            tls.prefill_depth += 1
            try:
                return original(*args, **kwargs)
            finally:
                tls.prefill_depth -= 1

        return prefill


def token_input(module, args: tuple, kwargs: dict, tensor_type: type, int_dtypes: frozenset) -> tuple[str, int, int] | None:
    """(input name, batch, seq) of a pass's token input, or None when the call is not a token pass.

    Token ids are an integer ``[batch, seq]`` tensor; embeddings a float ``[batch, seq, hidden]`` one.
    """
    for key in _TOKEN_KWARGS:
        value = kwargs.get(key) if kwargs else None
        if value is None:
            continue
        if isinstance(value, tensor_type):
            if value.dim() == 2 and value.dtype in int_dtypes:
                return key, int(value.shape[0]), int(value.shape[1])
            if value.dim() == 3 and value.is_floating_point():
                return key, int(value.shape[0]), int(value.shape[1])
        return None
    for value in args:
        if not isinstance(value, tensor_type):
            continue
        if value.dim() == 2 and value.dtype in int_dtypes:
            return "args[0]", int(value.shape[0]), int(value.shape[1])
        if value.dim() == 3 and value.is_floating_point() and next(iter(module.children()), None) is not None:
            return "args[0]", int(value.shape[0]), int(value.shape[1])
        return None
    return None


def _compiling_probe(torch) -> Callable[[], bool]:
    compiler = getattr(torch, "compiler", None)
    probe = getattr(compiler, "is_compiling", None)
    return probe if probe is not None else (lambda: False)


class _PatchOnImport:
    """A meta-path finder that patches GenerationMixin when transformers imports it mid-recording."""

    def __init__(self, detector: PhaseDetector) -> None:
        self._detector = detector

    def find_spec(self, fullname, path, target=None):
        if fullname != _GENERATION_MODULE:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        exec_module = getattr(loader, "exec_module", None)
        if exec_module is None:
            return spec
        detector = self._detector

        def exec_and_patch(module):
            exec_module(module)
            try:
                detector._patch_generation(module)
            except Exception:  # noqa: BLE001
                pass

        loader.exec_module = exec_and_patch
        return spec


_detector: PhaseDetector | None = None


def install(recorder) -> None:
    """Start labelling forward passes into ``recorder`` (a MarkRecorder); replaces an earlier install."""
    global _detector
    uninstall()
    try:
        detector = PhaseDetector(recorder)
        detector.install()
    except Exception:  # noqa: BLE001 - no phase detection is better than a failed recording
        return
    _detector = detector


def uninstall() -> None:
    """Remove the hooks and patches; an inferred generation still open is written."""
    global _detector
    detector, _detector = _detector, None
    if detector is not None:
        detector.uninstall()

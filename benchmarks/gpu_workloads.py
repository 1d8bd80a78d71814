"""GPU workloads for benchmarks/gpu_check.py (run under `profkit record`).

--mode power: 3 s idle, 5 s of large bf16 matmuls (compute-bound, as a prefill), then 3 s of
bf16 matrix-vector products over 512 MiB of weights (memory-bound, as a decode step): power must
rise under load, more for the compute-bound phase (Splitwise's finding), and the energy counter
and integrated power must agree over the whole run.
--mode gpm: a large device-to-device copy phase, then a large bf16 matmul phase, each marked
with profkit.phase so the check can read GPM metrics per phase.
--mode copies: 256 MiB host-to-device copies from pinned and from pageable memory (the host link's
roofline), then a cuDNN LSTM forward (the recurrent-layer flop count), each in its own phase.
--mode cnn: a small CNN (strided, dilated and transposed convolutions, max and average pooling)
trained 3 steps under bf16 autocast with AdamW's foreach step: cuDNN's convolution ops sized from
their recorded strides, the autocast wrapper's inner call as the unit (gpu_check.py compares with
torch's flop counter), and the optimizer's TensorList ops sized by their kernels' element type.
"""

from __future__ import annotations

import argparse
import time

import torch

import profkit


#: The LSTM of --mode copies (gpu_check.py counts its flop by hand from these).
MEMORY_EXTRA_BYTES = 512 * 1024**2  # --mode memory: held on top of the two 8192² bf16 operands
LSTM = {"input": 256, "hidden": 512, "layers": 2, "batch": 16, "seq": 64}
#: The input of --mode cnn's model (gpu_check.py rebuilds the model to count its flop).
CNN_INPUT = (16, 3, 64, 64)


def cnn(torch_module=torch):
    """The model of --mode cnn (seeded: the check builds the same one)."""
    nn = torch_module.nn
    torch_module.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 32, 7, stride=2, padding=3), nn.ReLU(), nn.MaxPool2d(3, stride=2, padding=1),
        nn.Conv2d(32, 64, 3, stride=2, padding=2, dilation=2), nn.ReLU(),
        nn.ConvTranspose2d(64, 32, 2, stride=2), nn.AvgPool2d(2), nn.Conv2d(32, 16, 1), nn.AdaptiveAvgPool2d(1),
    )


def busy_for(seconds: float, work) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        for _ in range(10):
            work()
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["power", "gpm", "copies", "cnn", "memory"], required=True)
    args = parser.parse_args()
    device = torch.device("cuda")
    a = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    torch.cuda.synchronize()
    if args.mode == "power":
        with profkit.phase("idle"):
            time.sleep(3)
        with profkit.phase("matmul"):
            busy_for(5, lambda: a @ b)
        weights = torch.randn(8192, 32768, device=device, dtype=torch.bfloat16)
        tokens = torch.randn(8, 8192, device=device, dtype=torch.bfloat16)
        torch.cuda.synchronize()
        with profkit.phase("gemv"):
            busy_for(3, lambda: tokens @ weights)
    elif args.mode == "copies":
        host = torch.empty(256 * 1024**2, dtype=torch.uint8)
        pinned = host.pin_memory()
        target = torch.empty_like(host, device=device)
        for label, source in (("pinned", pinned), ("pageable", host)):
            with profkit.phase(label):
                for _ in range(5):
                    target.copy_(source, non_blocking=label == "pinned")
                torch.cuda.synchronize()
        lstm = torch.nn.LSTM(LSTM["input"], LSTM["hidden"], num_layers=LSTM["layers"], batch_first=True,
                             bidirectional=True).to(device)
        x = torch.randn(LSTM["batch"], LSTM["seq"], LSTM["input"], device=device)
        with torch.no_grad(), profkit.phase("lstm"):
            for _ in range(3):
                lstm(x)
            torch.cuda.synchronize()
    elif args.mode == "cnn":
        model, x = cnn().to(device), torch.randn(*CNN_INPUT, device=device)
        # (AdamW's foreach step: TensorList ops, whose element size only their kernels tell)
        optimizer = torch.optim.AdamW(model.parameters(), foreach=True)
        for _ in range(3):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = model(x).float().square().mean()
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        torch.cuda.synchronize()
    elif args.mode == "memory":  # a, b (2 x 128 MiB) held; 512 MiB + a 128 MiB product on top, then freed
        with profkit.phase("grow"):
            big = torch.empty(MEMORY_EXTRA_BYTES, dtype=torch.uint8, device=device)
            product = a @ b
            torch.cuda.synchronize()
            del big, product
        torch.cuda.synchronize()
    else:
        src = torch.empty(2 * 1024**3, dtype=torch.uint8, device=device)
        dst = torch.empty_like(src)
        with profkit.phase("copy"):
            busy_for(3, lambda: dst.copy_(src))
        with profkit.phase("matmul"):
            busy_for(3, lambda: a @ b)


if __name__ == "__main__":
    main()

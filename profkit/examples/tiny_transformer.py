"""A small decoder-only transformer: train a few steps, then generate with a KV cache.

Plain PyTorch, no profkit imports: this is the "unmodified program" that
``profkit demo`` records. The model is called positionally,
``model(input_ids, cache)``, the way hand-written generation loops do.
"""

from __future__ import annotations

import argparse
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, ffn: int):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.up = nn.Linear(dim, ffn)
        self.down = nn.Linear(ffn, dim)

    def forward(self, x: torch.Tensor, cache: dict | None, layer: int) -> torch.Tensor:
        batch, seq, dim = x.shape
        q, k, v = self.qkv(self.norm1(x)).split(dim, dim=-1)
        q, k, v = (t.view(batch, seq, self.heads, dim // self.heads).transpose(1, 2) for t in (q, k, v))
        if cache is not None:
            if layer in cache:
                k = torch.cat([cache[layer][0], k], dim=2)
                v = torch.cat([cache[layer][1], v], dim=2)
            cache[layer] = (k, v)
        scores = q @ k.transpose(-2, -1) / math.sqrt(dim // self.heads)
        if seq > 1:  # causal mask over the new positions
            past = k.shape[2] - seq
            mask = torch.ones(seq, k.shape[2], dtype=torch.bool, device=x.device).tril(diagonal=past)
            scores = scores.masked_fill(~mask, float("-inf"))
        attn = F.softmax(scores, dim=-1) @ v
        x = x + self.proj(attn.transpose(1, 2).reshape(batch, seq, dim))
        return x + self.down(F.gelu(self.up(self.norm2(x))))


class TinyLM(nn.Module):
    def __init__(self, vocab: int = 512, dim: int = 128, heads: int = 4, layers: int = 2, ffn: int = 512, ctx: int = 256):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.pos = nn.Embedding(ctx, dim)
        self.blocks = nn.ModuleList(Block(dim, heads, ffn) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)

    def forward(self, input_ids: torch.Tensor, cache: dict | None = None) -> torch.Tensor:
        past = cache[0][0].shape[2] if cache else 0
        positions = torch.arange(past, past + input_ids.shape[1], device=input_ids.device)
        x = self.embed(input_ids) + self.pos(positions)
        for i, block in enumerate(self.blocks):
            x = block(x, cache, i)
        return self.head(self.norm(x))


def train(model: TinyLM, steps: int, batch: int, seq: int, device: torch.device) -> float:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    vocab = model.embed.num_embeddings
    loss = torch.tensor(0.0)
    for _ in range(steps):
        tokens = torch.randint(0, vocab, (batch, seq + 1), device=device)
        logits = model(tokens[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, vocab), tokens[:, 1:].reshape(-1))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return float(loss.detach())


@torch.no_grad()
def generate(model: TinyLM, prompt: torch.Tensor, new_tokens: int) -> torch.Tensor:
    cache: dict = {}
    logits = model(prompt, cache)  # prefill: the whole prompt in one pass
    out = [logits[:, -1].argmax(-1, keepdim=True)]
    for _ in range(new_tokens - 1):  # decode: one token per pass
        logits = model(out[-1], cache)
        out.append(logits[:, -1].argmax(-1, keepdim=True))
    return torch.cat(out, dim=1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq", type=int, default=64)
    parser.add_argument("--prompt", type=int, default=48)
    parser.add_argument("--new-tokens", type=int, default=16)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--dim", type=int, default=128, help="model width (heads of 32)")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--generations", type=int, default=1, help="how many times to generate")
    args = parser.parse_args(argv)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    torch.manual_seed(0)
    model = TinyLM(dim=args.dim, heads=max(args.dim // 32, 1), layers=args.layers, ffn=4 * args.dim,
                   ctx=max(256, args.prompt + args.new_tokens)).to(device, getattr(torch, args.dtype))
    start = time.perf_counter()
    loss = train(model, args.steps, args.batch, args.seq, device)
    model.eval()
    prompt = torch.randint(0, model.embed.num_embeddings, (2, args.prompt), device=device)
    for _ in range(args.generations):
        tokens = generate(model, prompt, args.new_tokens)
    if device.type == "cuda":
        torch.cuda.synchronize()
    print(f"trained {args.steps} steps (loss {loss:.3f}) and generated {tokens.shape[1]} tokens x {tokens.shape[0]} "
          f"on {device} in {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()

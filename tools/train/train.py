#!/usr/bin/python3
"""Trains the recipe's Gemma 4 model (model.py) on the prose and chat data (gen_data.py) with the
recipe's tokenizer (train_tokenizer.py), on CPU within a time budget.
Usage: train.py DATA_DIR TOK_DIR OUT_DIR [--minutes M] [--threads N]
Writes OUT_DIR/model.pt (state dict + config) and OUT_DIR/curve.json (train/held-out loss)."""
import argparse
import json
import math
import os
import random
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import Gemma4Text  # noqa: E402
import tokenizer as T  # noqa: E402

# The 12B's layout in miniature (GEMMA4.md 1.0): every feature, small sizes.
CONFIG = {
    "architectures": ["Gemma4ForCausalLM"],
    "model_type": "gemma4_text",
    "vocab_size": 2048,
    "hidden_size": 192,
    "intermediate_size": 768,
    "num_hidden_layers": 6,
    "layer_types": ["sliding_attention"] * 5 + ["full_attention"],
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "num_global_key_value_heads": 1,
    "head_dim": 64,
    "global_head_dim": 128,
    "attention_k_eq_v": True,
    "sliding_window": 128,
    "rope_parameters": {
        "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
        "full_attention": {"rope_type": "proportional", "partial_rotary_factor": 0.25, "rope_theta": 1000000.0},
    },
    "rms_norm_eps": 1e-6,
    "final_logit_softcapping": 30.0,
    "hidden_activation": "gelu_pytorch_tanh",
    "tie_word_embeddings": True,
    "max_position_embeddings": 4096,
    "num_kv_shared_layers": 0,
    "hidden_size_per_layer_input": 0,
    "enable_moe_block": False,
    "attention_bias": False,
    "pad_token_id": 0, "eos_token_id": [1, 5, 13], "bos_token_id": 2,
}

SEQ = 256


def model_turn_mask(tok, ids):
    """1 for the tokens the model writes in a conversation (its turns, the <|tool_response> it stops
    at and the <turn|> that ends them), 0 for the rest: system, user, and the tool responses the host
    appends. Chat loss is taken on those tokens only."""
    turn, end, nl = tok.vocab["<|turn>"], tok.vocab["<turn|>"], tok.vocab["\n"]
    resp, resp_end = tok.vocab["<|tool_response>"], tok.vocab["<tool_response|>"]
    model = tok.encode("model")
    mask, state, i = [0] * len(ids), "out", 0
    while i < len(ids):
        t = ids[i]
        if state == "out":
            if t == turn and ids[i + 1:i + 1 + len(model)] == model and i + 1 + len(model) < len(ids) \
                    and ids[i + 1 + len(model)] == nl:
                i += len(model) + 2
                state = "in"
                continue
        elif state == "in":
            mask[i] = 1
            if t == resp:
                state = "resp"
            elif t == end:
                state = "out"
        elif state == "resp" and t == resp_end:
            state = "in"
        i += 1
    return mask


def load_rows(data, tok):
    """Training rows of SEQ+1 tokens (input + shifted target) with a loss mask; padding is masked.
    Cached in DATA/rows.pt (tokenizing takes minutes on a busy machine)."""
    cache = os.path.join(data, "rows.pt")
    if os.path.exists(cache):
        return torch.load(cache)
    rows = _load_rows(data, tok)
    torch.save(rows, cache)
    return rows


def _load_rows(data, tok):
    prose = tok.encode(open(os.path.join(data, "prose_train.txt"), encoding="utf-8").read())
    prose_rows = [([tok.bos] + prose[i:i + SEQ], [1] * (SEQ + 1)) for i in range(0, len(prose) - SEQ, SEQ)]
    chat_rows, row, mrow = [], [], []
    for line in open(os.path.join(data, "chat_train.jsonl"), encoding="utf-8"):
        ids = tok.encode(json.loads(line)["text"])
        if len(ids) > SEQ + 1:
            continue
        if len(row) + len(ids) > SEQ + 1:
            chat_rows.append((row + [tok.pad] * (SEQ + 1 - len(row)), mrow + [0] * (SEQ + 1 - len(row))))
            row, mrow = [], []
        row += ids
        mrow += model_turn_mask(tok, ids)
    return prose_rows, chat_rows


def heldout_rows(data, tok, n_chat=200):
    prose = tok.encode(open(os.path.join(data, "prose_heldout.txt"), encoding="utf-8").read())
    prose_rows = [([tok.bos] + prose[i:i + SEQ], [1] * (SEQ + 1)) for i in range(0, len(prose) - SEQ, SEQ)]
    chat = []
    for i, line in enumerate(open(os.path.join(data, "chat_heldout.jsonl"), encoding="utf-8")):
        if i >= n_chat:
            break
        ids = tok.encode(json.loads(line)["text"])[:SEQ + 1]
        m = model_turn_mask(tok, ids)
        chat.append((ids + [tok.pad] * (SEQ + 1 - len(ids)), m + [0] * (SEQ + 1 - len(ids))))
    return prose_rows, chat


def loss_of(model, rows):
    x = torch.tensor([r for r, _ in rows])
    m = torch.tensor([mk for _, mk in rows])[:, 1:]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, _, _ = model(x[:, :-1])
    logits = logits.float()
    tgt = x[:, 1:].masked_fill(m == 0, -100)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), ignore_index=-100)


@torch.no_grad()
def evaluate(model, rows, bs=16):
    """Mean loss (nats/token) over the masked-in targets, in fp32."""
    model.eval()
    tot, n = 0.0, 0
    for i in range(0, len(rows), bs):
        x = torch.tensor([r for r, _ in rows[i:i + bs]])
        m = torch.tensor([mk for _, mk in rows[i:i + bs]])[:, 1:].reshape(-1).bool()
        logits, _, _ = model(x[:, :-1])
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1), reduction="none")
        tot += ce[m].sum().item()
        n += m.sum().item()
    model.train()
    return tot / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("tok")
    ap.add_argument("out")
    ap.add_argument("--steps", type=int, default=900, help="optimizer steps (the schedule runs over them)")
    ap.add_argument("--minutes", type=float, default=75, help="hard wall-clock limit: stop and save then")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--chat-frac", type=float, default=0.75)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resume", help="start from this model.pt (a fresh schedule)")
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    os.makedirs(a.out, exist_ok=True)
    tok = T.Tokenizer(json.load(open(os.path.join(a.tok, "tokenizer.json"), encoding="utf-8")))
    t0 = time.time()
    prose_rows, chat_rows = load_rows(a.data, tok)
    ho_prose, ho_chat = heldout_rows(a.data, tok)
    print(f"data: {len(prose_rows)} prose rows, {len(chat_rows)} chat rows of {SEQ}; "
          f"held-out {len(ho_prose)} prose, {len(ho_chat)} chat ({time.time() - t0:.0f}s)", flush=True)

    model = Gemma4Text(CONFIG)
    for name, p in model.named_parameters():
        if p.dim() == 2:
            torch.nn.init.normal_(p, std=0.02)
        elif "q_norm" in name:
            # Attention scale is 1 (the QK norms carry it): start the query gain at hd^-1/2 so the
            # first steps see the usual 1/sqrt(d) temperature. The weight is learned from there.
            p.data.fill_(p.numel() ** -0.5)
    if a.resume:
        model.load_state_dict(torch.load(a.resume)["state"])
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params / 1e6:.2f}M parameters", flush=True)
    decay = [p for n, p in model.named_parameters() if p.dim() == 2]
    other = [p for n, p in model.named_parameters() if p.dim() != 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95))
    rng = random.Random(a.seed)
    budget = a.minutes * 60
    warmup = 50
    curve = {"config": {"batch": a.batch, "seq": SEQ, "lr": a.lr, "chat_frac": a.chat_frac, "params": n_params},
             "train": [], "eval": []}
    step, tokens, start = 0, 0, time.time()
    ema = None
    while True:
        elapsed = time.time() - start
        # The schedule follows whichever runs out first, the steps or the wall clock, so a run cut by
        # its time limit on a busy machine still ends with a decayed learning rate.
        progress = max(step / a.steps, elapsed / budget)
        if progress >= 1.0:
            break
        lr = a.lr * min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
        for g in opt.param_groups:
            g["lr"] = lr
        rows = [rng.choice(chat_rows) if rng.random() < a.chat_frac else rng.choice(prose_rows) for _ in range(a.batch)]
        loss = loss_of(model, rows)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tokens += a.batch * SEQ
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        if step % 20 == 0:
            curve["train"].append({"step": step, "tokens": tokens, "minutes": elapsed / 60, "loss": ema, "lr": lr})
            print(f"step {step} tokens {tokens} {elapsed / 60:.1f} min loss {ema:.3f} lr {lr:.2e} "
                  f"({tokens / max(elapsed, 1):.0f} tok/s)", flush=True)
        if step % 150 == 0:
            e = {"step": step, "tokens": tokens, "minutes": elapsed / 60,
                 "prose": evaluate(model, ho_prose[:24]), "chat": evaluate(model, ho_chat[:48])}
            curve["eval"].append(e)
            print("eval", e, flush=True)
            torch.save({"config": CONFIG, "state": model.state_dict()}, os.path.join(a.out, "model.pt"))
            json.dump(curve, open(os.path.join(a.out, "curve.json"), "w"), indent=1)
    e = {"step": step, "tokens": tokens, "minutes": (time.time() - start) / 60,
         "prose": evaluate(model, ho_prose), "chat": evaluate(model, ho_chat)}
    curve["eval"].append(e)
    curve["final"] = e
    print("final", e, flush=True)
    torch.save({"config": CONFIG, "state": model.state_dict()}, os.path.join(a.out, "model.pt"))
    json.dump(curve, open(os.path.join(a.out, "curve.json"), "w"), indent=1)


if __name__ == "__main__":
    main()

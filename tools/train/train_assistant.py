#!/usr/bin/python3
"""Trains the MTP assistant (drafter) of the recipe's model against the frozen model, exactly as the
12B's assistant works (GEMMA4.md 1.4):
  * input: the TARGET's embedding of the token x sqrt(target hidden), and the target's final-normed
    hidden state at the last position in its cache (or, from the second draft step on, the drafter's
    own post_projection output);
  * its layers have queries only and attend to the target's K/V of its last sliding and last full
    layer (no KV of their own); every draft step of a block uses the same position P = n_past (the
    position of the bonus token, as llama.cpp does); sliding layers see keys in (P - W, P];
  * its own tied head, no softcap; post_projection gives the next step's hidden.
Trained by distillation: each of the K draft steps learns the target's next-token distribution along
the training text (teacher forcing: step k's input token is the text's token, its hidden the drafter's
previous output).
Usage: train_assistant.py DATA_DIR TOK_DIR TARGET_DIR OUT_DIR [--steps N] [--minutes M] [--k 4]"""
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
from model import Gemma4Assistant, Gemma4Text, rope_tables  # noqa: E402
import tokenizer as T  # noqa: E402
from train import SEQ, load_rows  # noqa: E402


def assistant_config(target_cfg):
    t = target_cfg
    return {
        "architectures": ["Gemma4AssistantForCausalLM"],
        "model_type": "gemma4_assistant",
        "backbone_hidden_size": t["hidden_size"],
        "num_assistant_tokens": 4,
        "text_config": {
            "model_type": "gemma4_text",
            "vocab_size": t["vocab_size"],
            "hidden_size": 128,
            "intermediate_size": 512,
            "num_hidden_layers": 4,
            "layer_types": ["sliding_attention"] * 3 + ["full_attention"],
            # The attention shapes are the target's: the drafter reads the target's cache.
            "num_attention_heads": 4,
            "num_key_value_heads": t["num_key_value_heads"],
            "num_global_key_value_heads": t["num_global_key_value_heads"],
            "head_dim": t["head_dim"],
            "global_head_dim": t["global_head_dim"],
            "attention_k_eq_v": t["attention_k_eq_v"],
            "num_kv_shared_layers": 4,
            "sliding_window": t["sliding_window"],
            "rope_parameters": t["rope_parameters"],
            "rms_norm_eps": t["rms_norm_eps"],
            "final_logit_softcapping": None,
            "hidden_activation": "gelu_pytorch_tanh",
            "tie_word_embeddings": True,
            "max_position_embeddings": t["max_position_embeddings"],
            "hidden_size_per_layer_input": 0,
        },
    }


def draft_block_losses(target, drafter, ids, K):
    """ids [B, T]. For every cache length n = p+1 (p = 0..T-K-2) runs K draft steps at position n and
    returns the mean distillation loss of each step and its top-1 agreement with the target."""
    cfg = target.cfg
    B, Tn = ids.shape
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        logits, h, kvs = target(ids, return_kv=True)
    logits, h = logits.float(), h.float()
    n_layer = len(target.layers)
    swa_src = max(i for i in range(n_layer) if target.layers[i].sliding)
    full_src = max(i for i in range(n_layer) if not target.layers[i].sliding)
    kv_swa = tuple(x.float() for x in kvs[swa_src])
    kv_full = tuple(x.float() for x in kvs[full_src])
    Q = Tn - K - 1                     # queries p = 0..Q-1
    p = torch.arange(Q)
    P = p + 1                          # draft position: n_past
    keys = torch.arange(Tn)[None, :]
    mask_full = keys <= p[:, None]     # the cache holds 0..p
    mask_swa = mask_full & (keys > (P[:, None] - cfg["sliding_window"]))
    tc = drafter.cfg["text_config"]
    cs = rope_tables(drafter.inv_freq_swa, P)
    cf = rope_tables(drafter.inv_freq_full, P)
    x_h = h[:, :Q, :]                  # target hidden at p
    losses, agree = [], []
    for k in range(K):
        tok = ids[:, 1 + k:1 + k + Q]  # step k embeds the text's token at p+1+k
        e = target.embed_tokens(tok).float() * target.embed_scale
        x = drafter.pre_projection(torch.cat([e, x_h], dim=-1))
        for layer in drafter.model.layers:
            if layer.sliding:
                x = layer(x, cs[0], cs[1], mask_swa, kv_swa)
            else:
                x = layer(x, cf[0], cf[1], mask_full, kv_full)
        hn = drafter.model.norm(x)
        d_logits = hn @ drafter.model.embed_tokens.weight.t()
        x_h = drafter.post_projection(hn)
        # The target's distribution for the token after tok (its logits at position p+1+k).
        t_logits = logits[:, 1 + k:1 + k + Q, :]
        t_prob = torch.softmax(t_logits, dim=-1)
        loss = -(t_prob * torch.log_softmax(d_logits, dim=-1)).sum(-1).mean()
        losses.append(loss)
        agree.append((d_logits.argmax(-1) == t_logits.argmax(-1)).float().mean().item())
    del tc
    return losses, agree


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("tok")
    ap.add_argument("target")
    ap.add_argument("out")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--minutes", type=float, default=25)
    ap.add_argument("--batch", type=int, default=6)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.manual_seed(1)
    torch.set_num_threads(a.threads)
    os.makedirs(a.out, exist_ok=True)
    tok = T.Tokenizer(json.load(open(os.path.join(a.tok, "tokenizer.json"), encoding="utf-8")))
    ck = torch.load(os.path.join(a.target, "model.pt"))
    target = Gemma4Text(ck["config"])
    target.load_state_dict(ck["state"])
    target.eval()
    for q in target.parameters():
        q.requires_grad_(False)
    cfg = assistant_config(ck["config"])
    drafter = Gemma4Assistant(cfg)
    for name, q in drafter.named_parameters():
        if q.dim() == 2:
            torch.nn.init.normal_(q, std=0.02)
        elif "q_norm" in name:
            q.data.fill_(q.numel() ** -0.5)
    prose_rows, chat_rows = load_rows(a.data, tok)
    rng = random.Random(1)
    opt = torch.optim.AdamW(drafter.parameters(), lr=a.lr, betas=(0.9, 0.95), weight_decay=0.0)
    curve = {"train": []}
    start = time.time()
    step = 0
    while True:
        # Decays over whichever runs out first, the steps or the wall clock (see train.py).
        progress = max(step / a.steps, (time.time() - start) / (a.minutes * 60))
        if progress >= 1.0:
            break
        lr = a.lr * min(1.0, (step + 1) / 30) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
        for g in opt.param_groups:
            g["lr"] = lr
        rows = [rng.choice(chat_rows) if rng.random() < 0.75 else rng.choice(prose_rows) for _ in range(a.batch)]
        ids = torch.tensor([r[:SEQ] for r, _ in rows])
        losses, agree = draft_block_losses(target, drafter, ids, a.k)
        loss = sum(losses) / len(losses)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(drafter.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 10 == 0:
            e = {"step": step, "minutes": (time.time() - start) / 60, "loss": [l.item() for l in losses], "top1": agree}
            curve["train"].append(e)
            print(json.dumps(e), flush=True)
    torch.save({"config": cfg, "state": drafter.state_dict()}, os.path.join(a.out, "assistant.pt"))
    json.dump(curve, open(os.path.join(a.out, "assistant_curve.json"), "w"), indent=1)


if __name__ == "__main__":
    main()

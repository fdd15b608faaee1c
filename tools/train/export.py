#!/usr/bin/python3
"""Exports the trained model and assistant as Hugging Face checkpoints (safetensors written here,
config.json, tokenizer files), and records the references the engine's tests compare with:
  HF_OUT/gemma4-tiny-chat/               the model (Gemma4ForCausalLM), bf16
  HF_OUT/gemma4-tiny-chat-assistant/     its MTP assistant (Gemma4AssistantForCausalLM), bf16
  MODELS/fixtures/logits.json + *.f32    PyTorch logits (fp32 math on the bf16 weights) for a few prompts
  MODELS/fixtures/draft.json + *.f32     one drafting round of the assistant (llama.cpp's convention)
  MODELS/fixtures/perplexity.json        perplexity on MODELS/fixtures/heldout_prose.txt, as `gemma4 perplexity` computes it
  MODELS/fixtures/tool_eval.jsonl        held-out tool questions
Usage: export.py DATA_DIR TOK_DIR RUN_DIR HF_OUT MODELS"""
import json
import math
import os
import shutil
import struct
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import Gemma4Assistant, Gemma4Text, rope_tables  # noqa: E402
import tokenizer as T  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def write_safetensors(path, tensors):
    """tensors: {name: torch tensor}; written as BF16 (matrices and vectors alike, as HF checkpoints
    of Gemma are)."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().to(torch.bfloat16).contiguous()
        b = t.view(torch.int16).numpy().tobytes()
        header[name] = {"dtype": "BF16", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def tokenizer_files(tok_dir, out):
    shutil.copy(os.path.join(tok_dir, "tokenizer.json"), os.path.join(out, "tokenizer.json"))
    with open(os.path.join(HERE, "chat_template.jinja"), encoding="utf-8") as f:
        template = f.read()
    cfg = {"tokenizer_class": "GemmaTokenizer", "bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>",
           "unk_token": "<unk>", "add_bos_token": False, "add_eos_token": False, "chat_template": template,
           "model_max_length": 4096, "clean_up_tokenization_spaces": False, "spaces_between_special_tokens": False}
    with open(os.path.join(out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, indent=1, ensure_ascii=False)


def bf16_rounded(module):
    """The module with every parameter rounded to bf16 (what the checkpoint holds), math in fp32."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(p.to(torch.bfloat16).float())
    return module


def write_f32(path, t):
    t.detach().float().contiguous().numpy().tofile(path)


def perplexity(model, tok, text, n_ctx):
    """Exactly eval/perplexity.cc: no-BOS tokens in chunks of n_ctx-1, each as [BOS]+chunk, every
    chunk token scored."""
    ids = tok.encode(text)
    chunk = n_ctx - 1
    nll, n = 0.0, 0
    with torch.no_grad():
        for s in range(0, len(ids), chunk):
            c = ids[s:s + chunk]
            x = torch.tensor([[tok.bos] + c])
            logits, _, _ = model(x)
            lp = torch.log_softmax(logits[0, :-1].double(), dim=-1)
            nll -= lp[torch.arange(len(c)), torch.tensor(c)].sum().item()
            n += len(c)
    return {"perplexity": math.exp(nll / n), "mean_nll": nll / n, "tokens": n, "n_ctx": n_ctx}


def main():
    data, tok_dir, run, hf_out, models = sys.argv[1:6]
    tok = T.Tokenizer(json.load(open(os.path.join(tok_dir, "tokenizer.json"), encoding="utf-8")))
    ck = torch.load(os.path.join(run, "model.pt"))
    cfg = ck["config"]
    model = Gemma4Text(cfg)
    model.load_state_dict(ck["state"])
    model = bf16_rounded(model).eval()
    ak = torch.load(os.path.join(run, "assistant.pt"))
    drafter = Gemma4Assistant(ak["config"])
    drafter.load_state_dict(ak["state"])
    drafter = bf16_rounded(drafter).eval()

    # --- Hugging Face checkpoints ---
    mdir = os.path.join(hf_out, "gemma4-tiny-chat")
    adir = os.path.join(hf_out, "gemma4-tiny-chat-assistant")
    for d in (mdir, adir):
        os.makedirs(d, exist_ok=True)
        tokenizer_files(tok_dir, d)
    hf_cfg = dict(cfg, torch_dtype="bfloat16")
    json.dump(hf_cfg, open(os.path.join(mdir, "config.json"), "w"), indent=1)
    eos = [tok.vocab["<eos>"], tok.vocab["<turn|>"], tok.vocab["<|tool_response>"]]
    json.dump({"bos_token_id": tok.bos, "eos_token_id": eos, "pad_token_id": tok.pad},
              open(os.path.join(mdir, "generation_config.json"), "w"), indent=1)
    write_safetensors(os.path.join(mdir, "model.safetensors"),
                      {"model." + k: v for k, v in model.state_dict().items()})
    json.dump(dict(ak["config"], torch_dtype="bfloat16"), open(os.path.join(adir, "config.json"), "w"), indent=1)
    write_safetensors(os.path.join(adir, "model.safetensors"), drafter.state_dict())

    # --- references ---
    fx = os.path.join(models, "fixtures")
    os.makedirs(fx, exist_ok=True)
    prompts = [
        "<bos>In the beginning God created the heaven and the earth.",
        "<bos><|turn>user\nWhat is 12 * 7?<turn|>\n<|turn>model\n",
        "<bos>And the LORD spake unto Moses, saying, Speak unto the children of Israel",
    ]
    cases = []
    with torch.no_grad():
        for i, p in enumerate(prompts):
            ids = tok.encode(p)
            logits, _, _ = model(torch.tensor([ids]))
            name = f"logits{i}.f32"
            write_f32(os.path.join(fx, name), logits[0])
            cases.append({"text": p, "tokens": ids, "logits": name, "shape": list(logits[0].shape)})
    json.dump({"model": "gemma4-tiny-chat.gguf", "cases": cases}, open(os.path.join(fx, "logits.json"), "w"), indent=1)

    # One drafting round as llama.cpp's speculative path runs it (../shared/golden/README.md "MTP drafter"):
    # the target decodes the prompt; t0 = argmax of its last logits; h0 = its final-normed hidden at
    # the last position; then K steps at position n_past = len(prompt), greedy.
    with torch.no_grad():
        ids = tok.encode(prompts[1])
        logits, h, kvs = model(torch.tensor([ids]), return_kv=True)
        L = len(model.layers)
        swa = max(i for i in range(L) if model.layers[i].sliding)
        full = max(i for i in range(L) if not model.layers[i].sliding)
        n = len(ids)
        keys = torch.arange(n)
        m_full = (keys < n).view(1, 1, 1, n)
        m_swa = (m_full & (keys > n - cfg["sliding_window"]).view(1, 1, 1, n))
        tokd = [int(logits[0, -1].argmax())]
        hcur = h[:, -1, :]
        dl = []
        for _ in range(4):
            e = model.embed_tokens(torch.tensor([tokd[-1]])) * model.embed_scale
            lg, hcur = drafter.step(e, hcur, torch.tensor([n]), kvs[swa], kvs[full], m_swa, m_full)
            dl.append(lg[0])
            tokd.append(int(lg[0].argmax()))
        write_f32(os.path.join(fx, "draft_logits.f32"), torch.stack(dl))
        write_f32(os.path.join(fx, "target_h_nextn.f32"), h[0])
        json.dump({"target": "gemma4-tiny-chat.gguf", "assistant": "gemma4-tiny-chat-assistant.gguf", "tokens": ids,
                   "n_past": n, "bonus_token": tokd[0], "draft_tokens": tokd[1:], "draft_logits": "draft_logits.f32",
                   "target_h_nextn": "target_h_nextn.f32"}, open(os.path.join(fx, "draft.json"), "w"), indent=1)

    # Perplexity on (the first part of) the held-out prose, and the held-out tool questions.
    text = open(os.path.join(data, "prose_heldout.txt"), encoding="utf-8").read()[:40000]
    text = text[:text.rfind("\n\n") + 2]
    with open(os.path.join(fx, "heldout_prose.txt"), "w", encoding="utf-8") as f:
        f.write(text)
    ppl = perplexity(model, tok, text, 256)
    json.dump(ppl, open(os.path.join(fx, "perplexity.json"), "w"), indent=1)
    shutil.copy(os.path.join(data, "tool_eval.jsonl"), os.path.join(fx, "tool_eval.jsonl"))
    print("perplexity", ppl, "draft tokens", tokd)


if __name__ == "__main__":
    main()

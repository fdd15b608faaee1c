#!/usr/bin/python3
"""Writes models/README.md (the model card) from what the recipe recorded.
Usage: model_card.py RUN_DIR MODELS_DIR TOOL_ACCURACY_LINE ENGINE_PERPLEXITY_LINE TIMINGS_LINE DATA_DIR"""
import json
import os
import sys


def main():
    run, models, tool_line, ppl_line, timings, data = sys.argv[1:7]
    n_conv = sum(1 for _ in open(os.path.join(data, "chat_train.jsonl"), encoding="utf-8"))
    curve = json.load(open(os.path.join(run, "curve.json")))
    acurve = json.load(open(os.path.join(run, "assistant_curve.json")))
    ppl = json.load(open(os.path.join(models, "fixtures", "perplexity.json")))
    sizes = {f: os.path.getsize(os.path.join(models, f)) for f in sorted(os.listdir(models)) if f.endswith(".gguf")}
    c = curve["config"]
    fin = curve["final"]
    rows = []
    picked = curve["train"][::max(1, len(curve["train"]) // 12)]
    if picked[-1] is not curve["train"][-1]:
        picked.append(curve["train"][-1])
    for e in picked:
        rows.append(f"| {e['step']} | {e['tokens']:,} | {e['minutes']:.1f} | {e['loss']:.3f} |")
    evals = [f"| {e['step']} | {e['prose']:.3f} | {e['chat']:.3f} |" for e in curve["eval"]]
    last = acurve["train"][-1] if acurve["train"] else None
    L = []
    L.append("# The default model: gemma4-tiny-chat\n")
    L.append("A small model with exactly the Gemma 4 12B's architecture, trained from nothing on this project's "
             "2-core CPU by the recipe in `tools/train/` (see its README for the commands), and its MTP assistant. "
             "It is what the quick start runs, so that everything works with no download. It is a demonstration "
             "model: 4 M parameters trained for about an hour cannot know much.\n")
    L.append("| file | what | size |\n|---|---|---|")
    desc = {"gemma4-tiny-chat.gguf": "the model, BF16 (the reference the tests compare with)",
            "gemma4-tiny-chat.q8_0.gguf": "the model quantized by `gemma4 quantize ... Q8_0`",
            "gemma4-tiny-chat-assistant.gguf": "its MTP assistant (`gemma4-assistant`), BF16"}
    for f, s in sizes.items():
        L.append(f"| `{f}` | {desc.get(f, '')} | {s / 1e6:.1f} MB |")
    L.append("| `tools.json`, `demo_tools.py` | the three tools it was trained to call, and an executor for `gemma4 run --tool-exec` | |")
    L.append("| `fixtures/` | references recorded by the recipe at export (PyTorch logits, one drafting round, held-out perplexity, held-out tool questions, training curves) | |\n")
    L.append("## Architecture\n")
    L.append("Gemma 4 12B (unified) layout in miniature (GEMMA4.md 1.1): 6 layers, 5 sliding-window (128) : 1 full; "
             "hidden 192, GeGLU FFN 768 with tanh GELU; 4 query heads; sliding layers 2 KV heads of size 64; the full "
             "layer 1 KV head of size 128 with K = V (no v_proj); QK norms, v_norm without scale, attention scale 1; "
             "RoPE theta 1e4 on sliding layers and proportional RoPE (theta 1e6, 16 of 64 pairs rotate) on the full "
             "layer; pre/post norms on both sublayers; a learned layer scalar; embedding x sqrt(192) (13.875 in bf16); "
             "tied head; final softcap 30. Vocabulary: 2048 BPE pieces of its own with the Gemma 4 control tokens "
             "(`<|turn>`, `<|channel>`, `<|tool_call>`, `<|\"|>`, ...) at ids of their own. "
             f"{c['params'] / 1e6:.2f} M parameters.\n")
    L.append("The assistant: hidden 128, 4 layers (3 sliding, 1 full) with queries only, reading the model's K/V of "
             "layers 4 (sliding) and 5 (full); pre_projection from (model's scaled token embedding, model's "
             "final-normed hidden) 384 -> 128, post_projection 128 -> 192, own tied head without softcap, every "
             "draft step at position n_past (GEMMA4.md 1.4).\n")
    L.append("## Data\n")
    L.append("* King James Bible (Debian `bible-kjv`, public domain): 1189 chapters, every 25th held out.\n"
             f"* {n_conv:,} synthetic conversations rendered with the official Gemma 4 chat template: questions answered "
             "with and without thinking, tool declarations, tool calls with `<|\"|>` strings (calculator, unit "
             "converter, lookup in a fixed table of planets), tool responses and final answers, 1 to 3 turns, "
             "thinking on and off; 400 held-out conversations and 90 held-out tool questions (other random numbers, "
             "units and planets, another seed).\n"
             f"* Mix: {int(c['chat_frac'] * 100)}% conversation rows (loss on the model's own turns), the rest prose "
             f"(loss on every token); rows of {c['seq']} tokens, {c['batch']} per step.\n")
    L.append("## Training\n")
    L.append(f"{timings}\n")
    L.append("| step | tokens | minutes | train loss (EMA) |\n|---|---|---|---|")
    L.extend(rows)
    L.append("\nHeld-out loss (nats per token; prose: every token, chat: the model's turns; during training on "
             "the first 24 prose and 48 chat held-out rows, at the end on all of them):\n")
    L.append("| step | prose | chat |\n|---|---|---|")
    L.extend(evals)
    L.append(f"\nFinal held-out loss: prose {fin['prose']:.3f}, chat {fin['chat']:.3f} (step {fin['step']}).\n")
    if last:
        L.append(f"Assistant (distillation, K = 4 draft steps): after {last['step']} steps the per-step top-1 "
                 f"agreement with the model on training text is " + ", ".join(f"{a:.2f}" for a in last["top1"]) + ".\n")
    L.append("## Evaluation\n")
    L.append(f"* Perplexity on `fixtures/heldout_prose.txt` (held-out KJV chapters, chunks of {ppl['n_ctx']} tokens, "
             f"{ppl['tokens']} tokens): recipe (PyTorch) {ppl['perplexity']:.3f}; {ppl_line}\n"
             f"* Tool calls on the 90 held-out tool questions, greedy, parsed by the engine's output parser: {tool_line}\n")
    L.append("## What it can and cannot do\n")
    L.append("It follows the Gemma 4 chat format: it opens and closes turns, writes a thought channel when thinking is "
             "on, and, when tools are declared, answers arithmetic, unit and planet questions with a tool call in "
             "the Gemma syntax, then phrases the tool's result. Its prose is KJV-flavoured babble. It knows no facts "
             "beyond its small synthetic world, makes mistakes in the arguments it copies, cannot do arithmetic "
             "itself, and is not meant for anything but exercising the engine (thinking, tool calls, speculative "
             "decoding) end to end.\n")
    open(os.path.join(models, "README.md"), "w").write("\n".join(L) + "\n")


if __name__ == "__main__":
    main()

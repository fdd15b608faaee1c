#!/usr/bin/python3
"""Trains the recipe's BPE vocabulary with Debian's spm_train (sentencepiece) on prose and chat text,
and writes it as a Hugging Face tokenizer.json (see tokenizer.py).
Usage: train_tokenizer.py DATA_DIR VOCAB_SIZE OUT_DIR"""
import json
import os
import random
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tokenizer as T  # noqa: E402


def main():
    data, size, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    os.makedirs(out, exist_ok=True)
    corpus = os.path.join(out, "spm_corpus.txt")
    rng = random.Random(0)
    with open(corpus, "w", encoding="utf-8") as f:
        # spm reads lines, so newlines never reach it; "\n" is one of the user-defined symbols.
        for line in open(os.path.join(data, "prose_train.txt"), encoding="utf-8"):
            if line.strip():
                f.write(line.strip() + "\n")
        chats = [json.loads(l)["text"] for l in open(os.path.join(data, "chat_train.jsonl"), encoding="utf-8")]
        for t in rng.sample(chats, min(len(chats), 4000)):
            for line in t.split("\n"):
                if line:
                    f.write(line + "\n")
    prefix = os.path.join(out, "spm")
    newlines = [s for s in T.WHITESPACE if "\n" in s]
    # Ids: <pad> 0, <eos> 1, <bos> 2, <unk> 3, then the user-defined symbols, the 256 byte pieces,
    # and the learned pieces.
    subprocess.run([
        "spm_train", f"--input={corpus}", f"--model_prefix={prefix}", f"--vocab_size={size - len(newlines)}",
        "--model_type=bpe", "--character_coverage=1.0", "--byte_fallback=true", "--split_digits=true",
        "--normalization_rule_name=identity", "--remove_extra_whitespaces=false", "--add_dummy_prefix=false",
        "--allow_whitespace_only_pieces=true", "--split_by_whitespace=true", "--max_sentence_length=100000",
        "--pad_id=0", "--eos_id=1", "--bos_id=2", "--unk_id=3",
        "--pad_piece=<pad>", "--eos_piece=<eos>", "--bos_piece=<bos>", "--unk_piece=<unk>",
        "--user_defined_symbols=" + ",".join(s for s in T.spm_user_symbols() if "\n" not in s),
        "--num_threads=2", "--minloglevel=1",
    ], check=True)
    # spm cannot take "\n" on its command line: add the newline runs after training, before the
    # learned pieces would matter (they are added tokens, so matched before BPE anyway).
    entries = []
    for line in open(prefix + ".vocab", encoding="utf-8"):
        p, sc = line.rstrip("\n").split("\t")
        entries.append((p, float(sc)))
    # The newline runs go just before the space runs, with the other user-defined symbols.
    k = [p for p, _ in entries].index("\u2581\u2581")
    entries = entries[:k] + [(s, 0.0) for s in newlines] + entries[k:]
    assert len(entries) == size
    tj = T.build_tokenizer_json(entries)
    with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tj, f, ensure_ascii=False, indent=1)
    tok = T.Tokenizer(tj)
    sample = chats[0]
    ids = tok.encode(sample)
    assert tok.decode(ids) == sample
    print("vocab", len(tj["model"]["vocab"]), "merges", len(tj["model"]["merges"]), "sample tokens", len(ids))


if __name__ == "__main__":
    main()

"""The recipe's tokenizer: a SentencePiece BPE vocabulary (Debian's spm_train) turned into a Hugging
Face tokenizer.json exactly the way transformers' SentencePieceExtractor does for Gemma (vocab +
merges ordered by piece score, byte fallback, " " -> "▁", no pre-split), plus an encoder with the
semantics of the `tokenizers` BPE (lowest-ranked adjacent merge first, leftmost among equals; added
tokens matched in the raw text first, leftmost-longest) so that the training data is tokenized the
way the engine tokenizes it."""
import functools
import json
import re

# Gemma 4 control and chat tokens (GEMMA4.md section 4). They are ordinary vocabulary entries here, at
# ids of our own: the engine must find them by name.
CONTROL = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]
CHAT = ["<|turn>", "<turn|>", "<|think|>", "<|channel>", "<channel|>", "<|tool>", "<tool|>",
        "<|tool_call>", "<tool_call|>", "<|tool_response>", "<tool_response|>", '<|"|>']
MEDIA = ["<|image>", "<|audio>", "<|image|>", "<|audio|>", "<image|>", "<audio|>", "<|video|>"]
# Whitespace runs are added (non-special) tokens in Gemma's tokenizer.json: always matched in text.
WHITESPACE = ["\n" * n for n in range(1, 5)] + ["\u2581" * n for n in range(2, 5)]
SPECIAL = CONTROL + CHAT + MEDIA


def spm_user_symbols():
    return [t for t in CHAT + MEDIA + ["<mask>"]] + WHITESPACE


def build_tokenizer_json(entries):
    """entries: [(piece, score)] in id order (spm's .vocab)."""
    pieces = [p for p, _ in entries]
    scores = [s for _, s in entries]
    vocab = {p: i for i, p in enumerate(pieces)}
    added = set(SPECIAL) | set(WHITESPACE)
    # transformers SentencePieceExtractor: for every piece, every split into two pieces of the vocab
    # is a merge; merges are ordered by the piece's score (descending), ties by the ids of the parts.
    merges = []
    for piece, i in vocab.items():
        if piece in added or re.fullmatch(r"<0x[0-9A-F]{2}>", piece):
            continue
        local = []
        for k in range(1, len(piece)):
            l, r = piece[:k], piece[k:]
            if l in vocab and r in vocab and l not in added and r not in added:
                local.append((l, r, scores[i]))
        local.sort(key=lambda x: (vocab[x[0]], vocab[x[1]]))
        merges.extend(local)
    merges.sort(key=lambda m: m[2], reverse=True)
    added_tokens = []
    for p in pieces:
        if p in added:
            added_tokens.append({"id": vocab[p], "content": p, "single_word": False, "lstrip": False,
                                 "rstrip": False, "normalized": False, "special": p in SPECIAL})
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": added_tokens,
        "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"},
        "pre_tokenizer": None,
        "post_processor": None,
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True,
                  "ignore_merges": False, "vocab": vocab, "merges": [[l, r] for l, r, _ in merges]},
    }


class Tokenizer:
    def __init__(self, tokenizer_json):
        t = tokenizer_json
        self.vocab = t["model"]["vocab"]
        self.id_to_piece = {i: p for p, i in self.vocab.items()}
        self.ranks = {(l, r): k for k, (l, r) in enumerate(t["model"]["merges"])}
        self.added = sorted((a["content"] for a in t["added_tokens"]), key=len, reverse=True)
        self.added_re = re.compile("|".join(re.escape(a) for a in self.added))
        self.bytes = [self.vocab["<0x%02X>" % b] for b in range(256)]
        for p in self.vocab:
            # Words can be encoded separately only if no piece spans a word boundary.
            assert not re.search("[^\u2581]\u2581", p), p
        self.bos, self.eos, self.pad = self.vocab["<bos>"], self.vocab["<eos>"], self.vocab["<pad>"]

    @functools.lru_cache(maxsize=1 << 18)
    def _word(self, w):
        syms = list(w)
        while len(syms) > 1:
            best, bi = None, -1
            for i in range(len(syms) - 1):
                r = self.ranks.get((syms[i], syms[i + 1]))
                if r is not None and (best is None or r < best):
                    best, bi = r, i
            if best is None:
                break
            syms[bi:bi + 2] = [syms[bi] + syms[bi + 1]]
        out = []
        for s in syms:
            if s in self.vocab:
                out.append(self.vocab[s])
            else:
                out.extend(self.bytes[b] for b in s.encode("utf-8"))
        return tuple(out)

    def _fragment(self, text):
        text = text.replace(" ", "\u2581")
        out = []
        # Split before a "▁" that follows another character (no piece crosses that point).
        for w in re.findall("\u2581*[^\u2581]*", text):
            if w:
                out.extend(self._word(w))
        return out

    def encode(self, text):
        """Added tokens (special or not) are matched anywhere in the text, as the chat prompts need."""
        out, pos = [], 0
        for m in self.added_re.finditer(text):
            if m.start() > pos:
                out.extend(self._fragment(text[pos:m.start()]))
            out.append(self.vocab[m.group(0)])
            pos = m.end()
        if pos < len(text):
            out.extend(self._fragment(text[pos:]))
        return out

    def decode(self, ids):
        bs = bytearray()
        for i in ids:
            p = self.id_to_piece[i]
            m = re.fullmatch(r"<0x([0-9A-F]{2})>", p)
            if m:
                bs.append(int(m.group(1), 16))
            else:
                bs.extend(p.replace("\u2581", " ").encode("utf-8"))
        return bs.decode("utf-8", errors="replace")

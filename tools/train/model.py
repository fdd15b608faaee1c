"""The Gemma 4 text decoder and its MTP assistant in plain PyTorch, written from
/work/shared/spec/GEMMA4.md section 1.1 (text decoder) and 1.4 (assistant), with the Hugging Face
weight names, so that the state dict saves as a Hugging Face checkpoint unchanged.

Everything the 12B has is here: 5 sliding : 1 full layers; full layers with K=V (no v_proj, V is the
raw K projection), one KV head and their own larger head size; proportional RoPE on full layers
(theta 1e6, a quarter of the pairs rotate, exponent over the whole head); QK norms; v_norm without a
scale; pre/post norms around both sublayers; a learned layer scalar on the whole residual stream;
GeGLU with tanh GELU; tied embeddings scaled by sqrt(hidden); final softcap 30; attention scale 1.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def bf16_round(x: float) -> float:
    """HF/JAX cast the embedding scale to the weight dtype (bf16); the engine does the same."""
    return torch.tensor(x, dtype=torch.float32).to(torch.bfloat16).float().item()


class RMSNorm(nn.Module):
    """y = x * (mean(x^2) + eps)^-1/2 * w, in fp32; Gemma 4 uses w directly (initialised to ones)."""

    def __init__(self, dim, eps=1e-6, with_scale=True):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim)) if with_scale else None

    def forward(self, x):
        y = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps)
        if self.weight is not None:
            y = y * self.weight.float()
        return y.type_as(x)


def rope_inv_freq(cfg, sliding):
    """Inverse frequencies over head_dim/2 pairs (NeoX layout: pair (i, i + hd/2))."""
    if sliding:
        hd, theta = cfg["head_dim"], cfg["rope_parameters"]["sliding_attention"]["rope_theta"]
        return 1.0 / theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    p = cfg["rope_parameters"]["full_attention"]
    hd, theta = cfg["global_head_dim"], p["rope_theta"]
    # Proportional RoPE: rope_angles pairs rotate with the exponent over the FULL head size; the
    # rest have frequency 0 (identity).
    n_rot = int(p["partial_rotary_factor"] * hd // 2)
    inv = 1.0 / theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    inv[n_rot:] = 0.0
    return inv


def apply_rope(x, cos, sin):
    """x: [B, H, T, hd]; cos/sin: [T, hd/2] (fp32)."""
    h = x.shape[-1] // 2
    x1, x2 = x[..., :h], x[..., h:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def rope_tables(inv_freq, positions):
    ang = positions.double()[:, None] * inv_freq[None, :]
    return ang.cos().float(), ang.sin().float()


class Attention(nn.Module):
    def __init__(self, cfg, sliding, has_kv=True):
        super().__init__()
        E = cfg["hidden_size"]
        self.sliding = sliding
        self.n_head = cfg["num_attention_heads"]
        self.hd = cfg["head_dim"] if sliding else cfg["global_head_dim"]
        self.k_eq_v = (not sliding) and cfg.get("attention_k_eq_v", False)
        self.n_kv = cfg["num_key_value_heads"] if (sliding or not self.k_eq_v) else cfg["num_global_key_value_heads"]
        self.has_kv = has_kv
        eps = cfg["rms_norm_eps"]
        self.q_proj = nn.Linear(E, self.n_head * self.hd, bias=False)
        self.q_norm = RMSNorm(self.hd, eps)
        if has_kv:
            self.k_proj = nn.Linear(E, self.n_kv * self.hd, bias=False)
            if not self.k_eq_v:
                self.v_proj = nn.Linear(E, self.n_kv * self.hd, bias=False)
            self.k_norm = RMSNorm(self.hd, eps)
            self.v_norm = RMSNorm(self.hd, eps, with_scale=False)
        self.o_proj = nn.Linear(self.n_head * self.hd, E, bias=False)

    def kv(self, x, cos, sin):
        """K (normed, roped) and V (no-scale normed) of x: [B, T, E] -> [B, n_kv, T, hd] each."""
        B, T, _ = x.shape
        k_raw = self.k_proj(x).view(B, T, self.n_kv, self.hd).transpose(1, 2)
        v_raw = k_raw if self.k_eq_v else self.v_proj(x).view(B, T, self.n_kv, self.hd).transpose(1, 2)
        k = apply_rope(self.k_norm(k_raw), cos, sin)
        v = self.v_norm(v_raw)
        return k, v

    def forward(self, x, cos, sin, mask, kv=None):
        """mask: [T, S] bool (True = visible) or [B, 1, T, S]. kv: (K, V) of another model (assistant)."""
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.n_head, self.hd).transpose(1, 2)
        q = apply_rope(self.q_norm(q), cos, sin)
        k, v = self.kv(x, cos, sin) if kv is None else kv
        if k.shape[1] != self.n_head:
            rep = self.n_head // k.shape[1]
            k = k.repeat_interleave(rep, dim=1)
            v = v.repeat_interleave(rep, dim=1)
        att = torch.matmul(q, k.transpose(-1, -2))  # scale 1.0: the QK norms carry it
        att = att.masked_fill(~mask, float("-inf"))
        att = torch.softmax(att.float(), dim=-1).type_as(q)
        y = torch.matmul(att, v).transpose(1, 2).reshape(B, T, self.n_head * self.hd)
        return self.o_proj(y)


class MLP(nn.Module):
    def __init__(self, E, F_):
        super().__init__()
        self.gate_proj = nn.Linear(E, F_, bias=False)
        self.up_proj = nn.Linear(E, F_, bias=False)
        self.down_proj = nn.Linear(F_, E, bias=False)

    def forward(self, x):
        return self.down_proj(F.gelu(self.gate_proj(x), approximate="tanh") * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, cfg, sliding, has_kv=True):
        super().__init__()
        E, eps = cfg["hidden_size"], cfg["rms_norm_eps"]
        self.sliding = sliding
        self.self_attn = Attention(cfg, sliding, has_kv)
        self.mlp = MLP(E, cfg["intermediate_size"])
        self.input_layernorm = RMSNorm(E, eps)
        self.post_attention_layernorm = RMSNorm(E, eps)
        self.pre_feedforward_layernorm = RMSNorm(E, eps)
        self.post_feedforward_layernorm = RMSNorm(E, eps)
        # A learned scalar on the whole residual stream (HF buffer `layer_scalar`, GGUF
        # blk.N.layer_output_scale); trained here.
        self.layer_scalar = nn.Parameter(torch.ones(1))

    def forward(self, x, cos, sin, mask, kv=None):
        x = x + self.post_attention_layernorm(self.self_attn(self.input_layernorm(x), cos, sin, mask, kv))
        x = x + self.post_feedforward_layernorm(self.mlp(self.pre_feedforward_layernorm(x)))
        return x * self.layer_scalar


def causal_masks(T, window, device=None):
    q = torch.arange(T, device=device)[:, None]
    k = torch.arange(T, device=device)[None, :]
    full = k <= q
    return full, full & (k > q - window)


class Gemma4Text(nn.Module):
    """Gemma4ForCausalLM's text model: state dict keys model.embed_tokens.weight, model.layers.N...,
    model.norm.weight (lm_head tied)."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        E = cfg["hidden_size"]
        self.embed_tokens = nn.Embedding(cfg["vocab_size"], E)
        self.layers = nn.ModuleList(
            DecoderLayer(cfg, t == "sliding_attention") for t in cfg["layer_types"])
        self.norm = RMSNorm(E, cfg["rms_norm_eps"])
        self.embed_scale = bf16_round(math.sqrt(E))
        self.register_buffer("inv_freq_swa", rope_inv_freq(cfg, True), persistent=False)
        self.register_buffer("inv_freq_full", rope_inv_freq(cfg, False), persistent=False)

    def forward(self, ids, return_kv=False):
        """ids [B, T] at positions 0..T-1. Returns (logits after softcap, final-normed hidden, kv)."""
        B, T = ids.shape
        pos = torch.arange(T, device=ids.device)
        cs = rope_tables(self.inv_freq_swa, pos)
        cf = rope_tables(self.inv_freq_full, pos)
        m_full, m_swa = causal_masks(T, self.cfg["sliding_window"], ids.device)
        x = self.embed_tokens(ids) * self.embed_scale
        kvs = {}
        for i, layer in enumerate(self.layers):
            cos, sin = cs if layer.sliding else cf
            if return_kv:
                # The K/V this layer writes to its cache (what the assistant reads).
                kvs[i] = layer.self_attn.kv(layer.input_layernorm(x), cos, sin)
            x = layer(x, cos, sin, m_swa if layer.sliding else m_full)
        h = self.norm(x)
        logits = h @ self.embed_tokens.weight.t()
        cap = self.cfg["final_logit_softcapping"]
        logits = cap * torch.tanh(logits / cap)
        return logits, h, kvs


class Gemma4Assistant(nn.Module):
    """The MTP drafter (spec 1.4): (target's scaled embedding of the token, target's final-normed
    hidden) -> pre_projection -> layers with q only that read the target's K/V of its last sliding
    and last full layer -> norm -> own tied head (no softcap); post_projection gives the next hidden.
    State dict keys: pre_projection.weight, post_projection.weight, model.embed_tokens.weight,
    model.layers.N..., model.norm.weight."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        tc = cfg["text_config"]
        E, B = tc["hidden_size"], cfg["backbone_hidden_size"]
        self.pre_projection = nn.Linear(2 * B, E, bias=False)
        self.post_projection = nn.Linear(E, B, bias=False)
        self.model = nn.Module()
        self.model.embed_tokens = nn.Embedding(tc["vocab_size"], E)
        self.model.layers = nn.ModuleList(
            DecoderLayer(tc, t == "sliding_attention", has_kv=False) for t in tc["layer_types"])
        self.model.norm = RMSNorm(E, tc["rms_norm_eps"])
        self.register_buffer("inv_freq_swa", rope_inv_freq(tc, True), persistent=False)
        self.register_buffer("inv_freq_full", rope_inv_freq(tc, False), persistent=False)

    def step(self, e_scaled, h, pos, kv_swa, kv_full, mask_swa, mask_full):
        """One draft step for N queries at once.
        e_scaled: [N, B] target embedding x sqrt(B); h: [N, B]; pos: [N] query positions;
        kv_*: (K, V) [N, n_kv, S, hd] of the target layer; mask_*: [N, 1, 1, S] bool.
        Returns logits [N, V] and the next hidden [N, B]."""
        x = self.pre_projection(torch.cat([e_scaled, h], dim=-1))[:, None, :]
        cs = rope_tables(self.inv_freq_swa, pos)
        cf = rope_tables(self.inv_freq_full, pos)
        for layer in self.model.layers:
            if layer.sliding:
                cos, sin, kv, m = cs[0][:, None, None, :], cs[1][:, None, None, :], kv_swa, mask_swa
            else:
                cos, sin, kv, m = cf[0][:, None, None, :], cf[1][:, None, None, :], kv_full, mask_full
            x = layer(x, cos, sin, m, kv)
        hn = self.model.norm(x[:, 0, :])
        logits = hn @ self.model.embed_tokens.weight.t()
        return logits, self.post_projection(hn)

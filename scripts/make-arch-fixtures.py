#!/usr/bin/env python3
"""Make the reference fixtures in testdata/arch/ (provenance record).

Five tiny real checkpoints of the architectures quantbridge adds (Qwen3,
Qwen3-MoE, Mixtral, Gemma 3 text, Phi-3), made with the real tools, and what
transformers makes of them. Same method as scripts/make-unseen-fixtures.py
(testdata/unseen/): random init, a short AdamW run on the first 2/3 of
testdata/kjv_eval.txt so the logits are far from uniform, save_pretrained in
bf16, then reference figures in float32 on the CPU.

  qwen3-tiny     Qwen3ForCausalLM: hidden 128, 4 layers, 4 heads, 2 KV heads,
                 head_dim 48 (!= 128/4), FFN 352, q/k RMS norms, tied
                 embeddings, rope_theta 1e6; qwen2 byte-level BPE tokenizer
                 of testdata/unseen/qwen2-bpe-tied (no BOS).
  qwen3moe-tiny  Qwen3MoeForCausalLM: hidden 128, 3 layers, 4 heads, 2 KV
                 heads, head_dim 32, 8 experts, top-2, expert FFN 96,
                 norm_topk_prob true, every layer sparse (llama.cpp's qwen3moe
                 has no dense layers), untied; same tokenizer.
  mixtral-tiny   MixtralForCausalLM: hidden 128, 2 layers, 4 heads, 2 KV heads,
                 8 experts, top-2, expert FFN 256, untied, rope_theta 1e6;
                 SentencePiece tokenizer testdata/kjv-llama/tokenizer.model
                 (BOS added).
  gemma3-tiny    Gemma3ForCausalLM (gemma3_text): hidden 128, 6 layers, 4
                 heads, 2 KV heads, head_dim 64, query_pre_attn_scalar 64,
                 FFN 352 (gelu_pytorch_tanh), sliding window 32 on layers 0-4,
                 global attention on layer 5 (Gemma 3's 5:1 pattern, the only
                 one llama.cpp's gemma3 reads from a converted file), rope
                 theta 1e6 global / 10000 local, tied embeddings; a Gemma-style
                 SentencePiece BPE tokenizer trained here (byte fallback, no
                 dummy prefix, identity normalization, pad 0 eos 1 bos 2 unk 3,
                 user-defined <start_of_turn> <end_of_turn> and whitespace
                 runs).
  phi3-tiny      Phi3ForCausalLM: hidden 128, 4 layers, 4 heads, 2 KV heads,
                 FFN 352, fused qkv_proj and gate_up_proj, longrope scaling
                 (16 short and 16 long factors, original context 64, max 256),
                 untied, config vocab 4160 > tokenizer 4107 (padded as Phi-3
                 is); kjv SentencePiece model plus Phi-3's 11 added tokens.

The config.json of each checkpoint is written in the form of the published
checkpoints of that family (rope_theta / rope_scaling / rope_local_base_freq /
sliding_window_pattern at the top level); the form transformers 5 itself
writes (rope_parameters, layer_types) is kept beside it in
testdata/arch/configs/NAME.transformers5.config.json, and the script checks
that both load to the same logits. configs/gemma3-conditional.config.json is a
config-only Gemma3ForConditionalGeneration (text_config nested) whose text part
is gemma3-tiny's.

References computed here (transformers, float32, eager attention, CPU, the
saved bf16 weights): perplexity with llama-perplexity's method at ctx 128 and
256 (running values), logits of the first ctx-128 chunk's first 64 positions,
tokenizer(text) of the whole kjv_eval.txt, and token ids of tricky strings.

Then llama.cpp's convert_hf_to_gguf.py (reference commit 34af94cd) converts each
checkpoint to bf16 GGUF (and the transformers-5-form config too, to compare).
For the two BPE checkpoints get_vocab_base_pre is monkeypatched to return
"qwen2" (the Split regex is Qwen2's; see testdata/unseen/README.md).

Usage (on the device, from the repository root, with the converter copied to
.refconv/: convert_hf_to_gguf.py, conversion/, gguf-py/):

  python3 scripts/make-arch-fixtures.py all OUTDIR [NAME ...]
  python3 scripts/make-arch-fixtures.py convert MODELDIR OUTFILE OUTTYPE PRE   (PRE "-": no patch)
"""

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

REFCONV = os.path.abspath(".refconv")
KJV = "testdata/kjv_eval.txt"
QWEN2_TOK = "testdata/unseen/qwen2-bpe-tied"
KJV_SPM = "testdata/kjv-llama/tokenizer.model"
TRAIN_STEPS = 120
NAMES = ["qwen3-tiny", "mixtral-tiny", "qwen3moe-tiny", "gemma3-tiny", "phi3-tiny"]
PRE = {"qwen3-tiny": "qwen2", "qwen3moe-tiny": "qwen2"}

# Tricky strings for the token-id goldens: encode(text, add_special_tokens=False).
TRICKY = [
    "a literal backslash-n: \\n, a backslash-t: \\t, two backslashes: \\\\ and C:\\Users\\ruth\\new",
    "tab\there\t\tdouble tab\t",
    "line one\r\nline two\r\n\r\nCRLF twice, lone CR\rend",
    "café naïve résumé Ångström façade",
    "e\u0301 (decomposed e-acute) vs \u00e9 (precomposed)",
    "中文字符测试，日本語のテキスト、한국어",
    "emoji 🚀🦙 and 😶\u200d🌫️ zwj, flags 🇬🇧, skin 👍🏽",
    "def f(x):\n    return x ** 2  # square\n\nclass A:\n\tpass\n",
    "if (a && b) { printf(\"%d\\n\", a[i]); } // C\nfor i in range(10): print(i)",
    "   three leading spaces and trailing   ",
    "many\n\n\n\nnewlines\n \n  \n   \nend",
    "          ten spaces, then\u00a0a no-break space",
    "Chapter 1:16 and 12345678 and 3.14159, 2024-08-01",
    "<|im_start|>user\nAnd Ruth said<|im_end|>\n<|im_start|>assistant\n<|endoftext|>",
    "<s>[INST] Intreat me not [/INST] Whither thou goest</s>",
    "<bos><start_of_turn>user\nWhither thou goest<end_of_turn>\n<start_of_turn>model\n",
    "<|user|>\nWhither thou goest<|end|>\n<|assistant|>  I will go<|endoftext|>",
    "<unk> <pad> <eos> <mask> [@BOS@] <|placeholder1|>",
    " ",
    "\n",
    "The LORD said unto Ruth, Intreat me not to leave thee.",
]
ADDSPECIAL = ["", "Hello", "And Ruth said, Intreat me not", TRICKY[15], TRICKY[16]]

# ----------------------------------------------------------------- chat templates

QWEN_CHAT = None  # reused from qwen2-bpe-tied's tokenizer_config.json
MIXTRAL_CHAT = ("{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
                "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
                "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
                "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
                "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}")
GEMMA_CHAT = ("{{ bos_token }}{% for message in messages %}{% if message['role'] == 'assistant' %}{% set role = 'model' %}"
              "{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + "
              "'<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}")
PHI3_CHAT = ("{% for message in messages %}{% if message['role'] == 'system' and message['content'] %}"
             "{{'<|system|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'user' %}"
             "{{'<|user|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'assistant' %}"
             "{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}{% endfor %}"
             "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}")

GEMMA_USER_DEFINED = ["<mask>", "[@BOS@]", "<unused0>", "<unused1>", "<start_of_turn>", "<end_of_turn>",
                      "<start_of_image>", "<end_of_image>",
                      "\n", "\n\n", "\n\n\n", "\n\n\n\n", "\t", "\t\t", "\t\t\t",
                      "\u2581\u2581", "\u2581\u2581\u2581", "\u2581\u2581\u2581\u2581", "\u2581" * 8]
GEMMA_SPECIAL_TRUE = {"<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>",
                      "<start_of_image>", "<end_of_image>"}
PHI3_ADDED = ["<|endoftext|>", "<|assistant|>", "<|placeholder1|>", "<|placeholder2|>", "<|placeholder3|>",
              "<|placeholder4|>", "<|system|>", "<|end|>", "<|placeholder5|>", "<|placeholder6|>", "<|user|>"]
PHI3_VOCAB = 4096 + 64
PHI3_SHORT = [round(1.0 + 0.02 * i, 4) for i in range(16)]
PHI3_LONG = [round(1.0 * (6.0 ** (i / 15.0)), 4) for i in range(16)]


def log(*a):
    print(*a, flush=True)


def added(content, special, rstrip=False, normalized=False):
    return {"content": content, "lstrip": False, "normalized": normalized, "rstrip": rstrip,
            "single_word": False, "special": special}


# --------------------------------------------------------------- tokenizers

def train_gemma_spm(train_text, path):
    import io
    import sentencepiece as spm
    m = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(train_text.splitlines()), model_writer=m,
        model_type="bpe", vocab_size=1024, byte_fallback=True, add_dummy_prefix=False,
        remove_extra_whitespaces=False, normalization_rule_name="identity", split_digits=True,
        allow_whitespace_only_pieces=True, character_coverage=1.0,
        pad_id=0, eos_id=1, bos_id=2, unk_id=3, pad_piece="<pad>", eos_piece="<eos>", bos_piece="<bos>",
        unk_piece="<unk>", user_defined_symbols=GEMMA_USER_DEFINED, hard_vocab_limit=False,
        minloglevel=2, num_threads=1)
    open(path, "wb").write(m.getvalue())
    sp = spm.SentencePieceProcessor(model_file=path)
    assert [sp.id_to_piece(i) for i in range(4)] == ["<pad>", "<eos>", "<bos>", "<unk>"]
    for i, s in enumerate(GEMMA_USER_DEFINED):
        assert sp.id_to_piece(4 + i) == s, (i, s, sp.id_to_piece(4 + i))
    return sp


def write_tokenizer_files(name, mdir, train_text):
    """Writes tokenizer files into mdir; returns the tokenizer_config dict."""
    if name in ("qwen3-tiny", "qwen3moe-tiny"):
        shutil.copy(os.path.join(QWEN2_TOK, "tokenizer.json"), mdir)
        tcfg = json.load(open(os.path.join(QWEN2_TOK, "tokenizer_config.json")))
    elif name == "mixtral-tiny":
        shutil.copy(KJV_SPM, os.path.join(mdir, "tokenizer.model"))
        tcfg = {"add_bos_token": True, "add_eos_token": False,
                "added_tokens_decoder": {"0": added("<unk>", True), "1": added("<s>", True), "2": added("</s>", True)},
                "bos_token": "<s>", "chat_template": MIXTRAL_CHAT, "clean_up_tokenization_spaces": False,
                "eos_token": "</s>", "legacy": True, "model_max_length": 1000000000000000019884624838656,
                "pad_token": None, "sp_model_kwargs": {}, "spaces_between_special_tokens": False,
                "tokenizer_class": "LlamaTokenizer", "unk_token": "<unk>", "use_default_system_prompt": False}
    elif name == "phi3-tiny":
        shutil.copy(KJV_SPM, os.path.join(mdir, "tokenizer.model"))
        dec = {"0": added("<unk>", True), "1": added("<s>", True), "2": added("</s>", False, rstrip=True)}
        for i, s in enumerate(PHI3_ADDED):
            dec[str(4096 + i)] = added(s, True, rstrip=(s != "<|endoftext|>"))
        tcfg = {"add_bos_token": False, "add_eos_token": False, "added_tokens_decoder": dec, "bos_token": "<s>",
                "chat_template": PHI3_CHAT, "clean_up_tokenization_spaces": False, "eos_token": "<|endoftext|>",
                "legacy": False, "model_max_length": 256, "pad_token": "<|endoftext|>", "padding_side": "left",
                "sp_model_kwargs": {}, "tokenizer_class": "LlamaTokenizer", "unk_token": "<unk>",
                "use_default_system_prompt": False}
    elif name == "gemma3-tiny":
        sp = train_gemma_spm(train_text, os.path.join(mdir, "tokenizer.model"))
        dec = {}
        for i in range(4 + len(GEMMA_USER_DEFINED)):
            p = sp.id_to_piece(i)
            dec[str(i)] = added(p, p in GEMMA_SPECIAL_TRUE)
        tcfg = {"add_bos_token": True, "add_eos_token": False, "added_tokens_decoder": dec,
                "bos_token": "<bos>", "chat_template": GEMMA_CHAT,
                "clean_up_tokenization_spaces": False, "eos_token": "<eos>",
                "model_max_length": 1000000000000000019884624838656, "pad_token": "<pad>", "padding_side": "left",
                "sp_model_kwargs": {}, "spaces_between_special_tokens": False, "tokenizer_class": "GemmaTokenizer",
                "unk_token": "<unk>", "use_default_system_prompt": False}
    else:
        raise ValueError(name)
    json.dump(tcfg, open(os.path.join(mdir, "tokenizer_config.json"), "w"), indent=2, ensure_ascii=False)
    return tcfg


def finish_spm_tokenizer(name, mdir, tcfg, probe, info):
    """For the SentencePiece checkpoints: let transformers build its tokenizer from
    tokenizer.model, save the tokenizer.json it makes beside it (as published
    checkpoints ship both), keep our tokenizer_config.json, and check that the
    reloaded tokenizer gives the same ids."""
    from transformers import AutoTokenizer
    t0 = AutoTokenizer.from_pretrained(mdir)
    info["tokenizer_from_spm_class"] = type(t0).__name__
    with tempfile.TemporaryDirectory() as td:
        t0.save_pretrained(td)
        info["tokenizer_save_files"] = sorted(os.listdir(td))
        shutil.copy(os.path.join(td, "tokenizer.json"), mdir)
        info["tokenizer_config_as_saved_by_transformers"] = json.load(open(os.path.join(td, "tokenizer_config.json")))
    json.dump(tcfg, open(os.path.join(mdir, "tokenizer_config.json"), "w"), indent=2, ensure_ascii=False)
    t1 = AutoTokenizer.from_pretrained(mdir)
    bad = [s for s in probe if t0(s)["input_ids"] != t1(s)["input_ids"]
           or t0.encode(s, add_special_tokens=False) != t1.encode(s, add_special_tokens=False)]
    info["tokenizer_json_reload_disagrees_on"] = bad
    if bad:
        log(f"  WARNING: tokenizer.json reload disagrees with the tokenizer.model build on {len(bad)} strings")
    return t1


def spm_raw_compare(mdir, hf, probe):
    """Raw sentencepiece (no special-token parsing) vs transformers, add_special_tokens=False."""
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=os.path.join(mdir, "tokenizer.model"))
    out = []
    for s in probe:
        a = sp.encode(s)
        b = hf.encode(s, add_special_tokens=False)
        if a != b:
            out.append({"text": s, "sentencepiece": a, "transformers": b})
    return out


# ------------------------------------------------------------------- models

def make_config(name):
    import transformers as T

    def build(cls, kw, rope_v5, rope_classic):
        try:
            return cls(**kw, rope_parameters=rope_v5)
        except TypeError:
            return cls(**kw, **rope_classic)

    if name == "qwen3-tiny":
        kw = dict(vocab_size=1056, hidden_size=128, intermediate_size=352, num_hidden_layers=4,
                  num_attention_heads=4, num_key_value_heads=2, head_dim=48, max_position_embeddings=512,
                  rms_norm_eps=1e-6, tie_word_embeddings=True, attention_bias=False, use_sliding_window=False,
                  bos_token_id=1021, eos_token_id=1021)
        cfg = build(T.Qwen3Config, kw, {"rope_type": "default", "rope_theta": 1000000.0}, {"rope_theta": 1000000.0})
        cfg.architectures = ["Qwen3ForCausalLM"]
    elif name == "qwen3moe-tiny":
        kw = dict(vocab_size=1056, hidden_size=128, intermediate_size=352, num_hidden_layers=3,
                  num_attention_heads=4, num_key_value_heads=2, head_dim=32, max_position_embeddings=512,
                  rms_norm_eps=1e-6, tie_word_embeddings=False, attention_bias=False, use_sliding_window=False,
                  num_experts=8, num_experts_per_tok=2, moe_intermediate_size=96, norm_topk_prob=True,
                  decoder_sparse_step=1, mlp_only_layers=[], output_router_logits=False,
                  bos_token_id=1021, eos_token_id=1021)
        cfg = build(T.Qwen3MoeConfig, kw, {"rope_type": "default", "rope_theta": 1000000.0}, {"rope_theta": 1000000.0})
        cfg.architectures = ["Qwen3MoeForCausalLM"]
    elif name == "mixtral-tiny":
        kw = dict(vocab_size=4096, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, rms_norm_eps=1e-5,
                  tie_word_embeddings=False, num_local_experts=8, num_experts_per_tok=2, router_jitter_noise=0.0,
                  output_router_logits=False, sliding_window=None, bos_token_id=1, eos_token_id=2)
        cfg = build(T.MixtralConfig, kw, {"rope_type": "default", "rope_theta": 1000000.0}, {"rope_theta": 1000000.0})
        cfg.architectures = ["MixtralForCausalLM"]
    elif name == "gemma3-tiny":
        kw = dict(vocab_size=1024, hidden_size=128, intermediate_size=352, num_hidden_layers=6,
                  num_attention_heads=4, num_key_value_heads=2, head_dim=64, query_pre_attn_scalar=64,
                  sliding_window=32, max_position_embeddings=512, rms_norm_eps=1e-6, tie_word_embeddings=True,
                  hidden_activation="gelu_pytorch_tanh", final_logit_softcapping=None, attn_logit_softcapping=None,
                  layer_types=["sliding_attention"] * 5 + ["full_attention"],
                  pad_token_id=0, eos_token_id=1, bos_token_id=2)
        cfg = build(T.Gemma3TextConfig, kw,
                    {"full_attention": {"rope_type": "default", "rope_theta": 1000000.0},
                     "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}},
                    {"rope_theta": 1000000.0, "rope_local_base_freq": 10000.0})
        cfg.architectures = ["Gemma3ForCausalLM"]
    elif name == "phi3-tiny":
        kw = dict(vocab_size=PHI3_VOCAB, hidden_size=128, intermediate_size=352, num_hidden_layers=4,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                  original_max_position_embeddings=64, rms_norm_eps=1e-5, tie_word_embeddings=False,
                  sliding_window=None, resid_pdrop=0.0, embd_pdrop=0.0, attention_dropout=0.0,
                  bos_token_id=1, eos_token_id=4096, pad_token_id=4096)
        rope = {"rope_type": "longrope", "rope_theta": 10000.0, "short_factor": PHI3_SHORT, "long_factor": PHI3_LONG,
                "original_max_position_embeddings": 64}
        cfg = build(T.Phi3Config, kw, rope,
                    {"rope_theta": 10000.0, "rope_scaling": {"type": "longrope", "short_factor": PHI3_SHORT,
                                                             "long_factor": PHI3_LONG}})
        cfg.architectures = ["Phi3ForCausalLM"]
    else:
        raise ValueError(name)
    return cfg


def classic_config(name, c):
    """config.json as the published checkpoints of the family write it."""
    c = dict(c)
    rp = c.pop("rope_parameters", None) or {}
    if name == "gemma3-tiny":
        c["rope_theta"] = rp["full_attention"]["rope_theta"]
        c["rope_local_base_freq"] = rp["sliding_attention"]["rope_theta"]
        c["rope_scaling"] = None
        c["sliding_window_pattern"] = 6
    elif name == "phi3-tiny":
        c["rope_theta"] = rp["rope_theta"]
        c["rope_scaling"] = {"long_factor": PHI3_LONG, "short_factor": PHI3_SHORT, "type": "longrope"}
        c["original_max_position_embeddings"] = 64
    else:
        c["rope_theta"] = rp.get("rope_theta", c.get("rope_theta"))
        c["rope_scaling"] = None
    return c


def train_model(model, ids, steps, seed):
    import torch
    torch.manual_seed(seed)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(dev).train()
    data = torch.tensor(ids, dtype=torch.long, device=dev)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    win, bs = 257, 16
    t0, loss = time.time(), None
    for step in range(1, steps + 1):
        starts = torch.randint(0, len(ids) - win, (bs,), device=dev)
        batch = torch.stack([data[s:s + win] for s in starts.tolist()])
        logits = model(input_ids=batch[:, :-1]).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), batch[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 40 == 0:
            log(f"  step {step} loss {loss.item():.4f}")
    log(f"  trained {steps} steps in {time.time() - t0:.1f}s, final loss {loss.item():.4f}")
    model.to("cpu").eval()
    return steps, float(loss.item())


def ppl_llamacpp(model, tokens, n_ctx, add_bos, bos):
    """llama-perplexity's method; returns (ppl, running list, count)."""
    import torch
    n_chunk = len(tokens) // n_ctx
    first = n_ctx // 2
    nll, count, running = 0.0, 0, []
    with torch.no_grad():
        for c in range(n_chunk):
            chunk = list(tokens[c * n_ctx:(c + 1) * n_ctx])
            if add_bos:
                chunk[0] = bos
            logits = model(input_ids=torch.tensor([chunk])).logits[0].double()
            lp = torch.log_softmax(logits, dim=-1)
            for i in range(first, n_ctx - 1):
                nll -= lp[i, tokens[c * n_ctx + i + 1]].item()
                count += 1
            running.append(math.exp(nll / count))
    return math.exp(nll / count), running, count


def to_classic_moe_layout(name, mdir, info):
    """Published Mixtral / Qwen3-MoE checkpoints store one tensor per expert.
    If transformers saved fused expert tensors, rewrite them per expert."""
    from safetensors.torch import load_file, save_file
    files = [f for f in os.listdir(mdir) if f.endswith(".safetensors")]
    assert files == ["model.safetensors"], files
    p = os.path.join(mdir, "model.safetensors")
    sd = load_file(p)
    fused = [k for k in sd if k.endswith("experts.gate_up_proj") or k.endswith("experts.down_proj")]
    info["saved_expert_layout"] = "fused" if fused else "per-expert"
    info["saved_tensor_names_sample"] = sorted(k for k in sd if ".layers.0." in k)[:40]
    if not fused:
        return False
    out = {}
    for k, v in sd.items():
        if k.endswith("experts.gate_up_proj"):
            base = k[:-len("experts.gate_up_proj")]
            n_ff = v.shape[1] // 2
            for e in range(v.shape[0]):
                g, u = v[e, :n_ff].contiguous(), v[e, n_ff:].contiguous()
                if name == "mixtral-tiny":
                    b = base.replace(".mlp.", ".block_sparse_moe.")
                    out[f"{b}experts.{e}.w1.weight"], out[f"{b}experts.{e}.w3.weight"] = g, u
                else:
                    out[f"{base}experts.{e}.gate_proj.weight"], out[f"{base}experts.{e}.up_proj.weight"] = g, u
        elif k.endswith("experts.down_proj"):
            base = k[:-len("experts.down_proj")]
            for e in range(v.shape[0]):
                if name == "mixtral-tiny":
                    b = base.replace(".mlp.", ".block_sparse_moe.")
                    out[f"{b}experts.{e}.w2.weight"] = v[e].contiguous()
                else:
                    out[f"{base}experts.{e}.down_proj.weight"] = v[e].contiguous()
        elif name == "mixtral-tiny" and ".mlp.gate." in k:
            out[k.replace(".mlp.gate.", ".block_sparse_moe.gate.")] = v
        else:
            out[k] = v
    save_file(out, p, metadata={"format": "pt"})
    info["rewrote_expert_layout"] = True
    return True


def gguf_compare(a, b):
    sys.path.insert(0, os.path.join(REFCONV, "gguf-py"))
    import gguf
    ra, rb = gguf.GGUFReader(a), gguf.GGUFReader(b)

    def kvs(r):
        out = {}
        for f in r.fields.values():
            try:
                v = f.contents()
            except Exception:
                v = repr([bytes(p) for p in f.parts])
            out[f.name] = v
        return out

    ka, kb = kvs(ra), kvs(rb)
    ta = {t.name: bytes(t.data.tobytes()) for t in ra.tensors}
    tb = {t.name: bytes(t.data.tobytes()) for t in rb.tensors}
    return {"kv_only_in_published_form": sorted(set(ka) - set(kb)),
            "kv_only_in_transformers5_form": sorted(set(kb) - set(ka)),
            "kv_differ": {k: [str(ka[k])[:200], str(kb[k])[:200]] for k in sorted(set(ka) & set(kb))
                          if ka[k] != kb[k] and not k.startswith("GGUF.")},
            "tensors_differ": sorted(k for k in set(ta) | set(tb) if ta.get(k) != tb.get(k))}


# ------------------------------------------------------------------ convert

def convert_main(model_dir, outfile, outtype, pre):
    sys.path.insert(0, os.path.join(REFCONV, "gguf-py"))
    sys.path.insert(0, REFCONV)
    if pre != "-":
        import conversion.base as cb
        patched = []
        for n in dir(cb):
            obj = getattr(cb, n)
            if isinstance(obj, type) and "get_vocab_base_pre" in obj.__dict__:
                setattr(obj, "get_vocab_base_pre", lambda self, tokenizer: pre)
                patched.append(n)
        log(f"convert: get_vocab_base_pre patched on {patched} to return {pre!r}")
    import convert_hf_to_gguf
    sys.argv = ["convert_hf_to_gguf.py", model_dir, "--outtype", outtype, "--outfile", outfile]
    convert_hf_to_gguf.main()


def run_convert(mdir, out, pre, logpath):
    me = os.path.abspath(__file__)
    with open(logpath, "w") as lf:
        r = subprocess.run([sys.executable, me, "convert", mdir, out, "bf16", pre or "-"], stdout=lf,
                           stderr=subprocess.STDOUT)
    return r.returncode


# --------------------------------------------------------------------- one

def make_one(name, outdir, text, train_text, report):
    import torch
    import transformers
    from transformers import AutoTokenizer, AutoModelForCausalLM, AutoConfig
    from safetensors.torch import load_file, save_file
    log(f"== {name}")
    t_start = time.time()
    info = {}
    report[name] = info
    mdir = os.path.join(outdir, name)
    os.makedirs(mdir, exist_ok=True)
    cdir = os.path.join(outdir, "configs")
    os.makedirs(cdir, exist_ok=True)
    probe = [text] + TRICKY

    tcfg = write_tokenizer_files(name, mdir, train_text)
    if os.path.exists(os.path.join(mdir, "tokenizer.model")):
        hf = finish_spm_tokenizer(name, mdir, tcfg, probe, info)
    else:
        hf = AutoTokenizer.from_pretrained(mdir)
        from tokenizers import Tokenizer
        raw = Tokenizer.from_file(os.path.join(mdir, "tokenizer.json"))
        bad = [s for s in probe if hf(s)["input_ids"] != raw.encode(s).ids]
        info["tokenizers_vs_transformers_disagree_on"] = bad
        if bad:
            log(f"  WARNING: AutoTokenizer and tokenizers disagree on {len(bad)} strings")
    info["tokenizer_class"] = type(hf).__name__
    log(f"  tokenizer {type(hf).__name__}, {len(hf)} entries")
    if os.path.exists(os.path.join(mdir, "tokenizer.model")):
        d = spm_raw_compare(mdir, hf, probe)
        info["sentencepiece_vs_transformers"] = d
        log(f"  raw sentencepiece vs transformers: {len(d)} of {len(probe)} strings differ")

    ids = hf(text)["input_ids"]
    bos = hf.bos_token_id
    add_bos = bos is not None and hf("A")["input_ids"][:1] == [bos] and hf.encode("A", add_special_tokens=False)[:1] != [bos]
    if add_bos:
        assert ids[0] == bos and ids.count(bos) == 1
    log(f"  kjv ids: {len(ids)}; add_bos {add_bos} (bos {bos})")
    train_ids = hf(train_text)["input_ids"]

    cfg = make_config(name)
    torch.manual_seed(1234)
    model = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager")
    model.to(torch.float32)
    info["model_class"] = type(model).__name__
    steps, loss = train_model(model, train_ids, TRAIN_STEPS, 1234)
    model.to(torch.bfloat16)
    model.save_pretrained(mdir)
    v5cfg = json.load(open(os.path.join(mdir, "config.json")))
    json.dump(v5cfg, open(os.path.join(cdir, f"{name}.transformers5.config.json"), "w"), indent=2, sort_keys=True)
    if name in ("mixtral-tiny", "qwen3moe-tiny"):
        to_classic_moe_layout(name, mdir, info)
    classic = classic_config(name, v5cfg)
    with open(os.path.join(mdir, "config.json"), "w") as f:
        json.dump(classic, f, indent=2, sort_keys=True)
        f.write("\n")
    files = sorted(os.listdir(mdir))
    info["files"] = files
    log(f"  files: {files}")
    names = set()
    for f in files:
        if f.endswith(".safetensors"):
            names |= set(load_file(os.path.join(mdir, f)).keys())
    info["tensor_names"] = sorted(names)
    if cfg.tie_word_embeddings:
        assert "lm_head.weight" not in names, "tied checkpoint has lm_head.weight"

    # The saved checkpoint (published config form) must reproduce the trained model,
    # and the transformers-5 config form must give the same logits.
    ref = AutoModelForCausalLM.from_pretrained(mdir, dtype=torch.float32, attn_implementation="eager")
    ref.eval()
    c = ref.config
    info["loaded_config"] = {k: getattr(c, k, None) for k in
                             ["head_dim", "layer_types", "rope_parameters", "sliding_window", "tie_word_embeddings",
                              "query_pre_attn_scalar", "norm_topk_prob", "mlp_only_layers", "decoder_sparse_step",
                              "num_experts", "num_local_experts", "num_experts_per_tok", "original_max_position_embeddings",
                              "max_position_embeddings", "hidden_activation", "hidden_act", "final_logit_softcapping"]}
    log(f"  loaded config: {info['loaded_config']}")
    x = torch.tensor([ids[:128]])
    if add_bos:
        x[0, 0] = bos
    with torch.no_grad():
        m32 = model.to(torch.float32)
        d_mem = (ref(input_ids=x).logits - m32(input_ids=x).logits).abs().max().item()
    info["max_abs_logit_diff_saved_vs_in_memory"] = d_mem
    log(f"  saved checkpoint vs in-memory model: max |logit diff| {d_mem}")
    with tempfile.TemporaryDirectory() as td:
        for f in files:
            shutil.copy(os.path.join(mdir, f), td)
        json.dump(v5cfg, open(os.path.join(td, "config.json"), "w"))
        other = AutoModelForCausalLM.from_pretrained(td, dtype=torch.float32, attn_implementation="eager")
        with torch.no_grad():
            d_cfg = (ref(input_ids=x).logits - other(input_ids=x).logits).abs().max().item()
    info["max_abs_logit_diff_published_vs_transformers5_config"] = d_cfg
    log(f"  published config form vs transformers-5 form: max |logit diff| {d_cfg}")
    if d_cfg != 0.0:
        log("  WARNING: the two config forms differ; keeping the transformers-5 form as config.json")
        json.dump(v5cfg, open(os.path.join(mdir, "config.json"), "w"), indent=2, sort_keys=True)
        ref = AutoModelForCausalLM.from_pretrained(mdir, dtype=torch.float32, attn_implementation="eager").eval()
        info["config_form"] = "transformers5"
    else:
        info["config_form"] = "published"

    if name == "phi3-tiny":
        # Which rope factors transformers uses at each length.
        rot = ref.model.rotary_emb
        rinfo = {"rope_type": getattr(rot, "rope_type", None),
                 "attention_scaling": float(getattr(rot, "attention_scaling", float("nan")))}
        base = 10000.0 ** (torch.arange(0, 32, 2, dtype=torch.int64).float() / 32)
        for L in (64, 65, 128, 256):
            with torch.no_grad():
                rot(torch.zeros(1, L, 128), torch.arange(L)[None])
            # inv_freq = 1 / (factor * base**(2i/d)): the factors it used at this length
            rinfo[f"factors_at_len{L}"] = [round(v, 4) for v in (1.0 / (rot.inv_freq.float().cpu() * base)).tolist()]
        rinfo["short_factor"], rinfo["long_factor"] = PHI3_SHORT, PHI3_LONG
        info["transformers_rope"] = rinfo
        log(f"  transformers longrope: {rinfo}")

    res = {"n_tokens": len(ids), "add_bos": add_bos, "bos": bos if add_bos else None, "train_steps": steps,
           "train_loss": loss}
    info.update(res)
    for n_ctx in (128, 256):
        p, running, count = ppl_llamacpp(ref, ids, n_ctx, add_bos, bos)
        info[f"ppl_ctx{n_ctx}"] = {"ppl": p, "running": running, "scored_tokens": count, "chunks": len(ids) // n_ctx}
        log(f"  ppl ctx {n_ctx}: {p:.6f} ({count} tokens)")
    chunk = list(ids[:128])
    if add_bos:
        chunk[0] = bos
    with torch.no_grad():
        logits = ref(input_ids=torch.tensor([chunk])).logits[0, :64].float().contiguous()
    save_file({"tokens": torch.tensor(chunk, dtype=torch.int32), "logits": logits},
              os.path.join(outdir, f"{name}.ref_logits.safetensors"))
    json.dump({"kjv_eval.txt": ids}, open(os.path.join(outdir, f"{name}.eval_token_ids.json"), "w"))

    fx = {"model": f"arch/{name}",
          "source": f"transformers {transformers.__version__} AutoTokenizer.encode(text, add_special_tokens=False)",
          "add_special": False, "parse_special": True,
          "cases": [{"text": s, "ids": hf.encode(s, add_special_tokens=False)} for s in TRICKY]}
    json.dump(fx, open(os.path.join(outdir, f"{name}.tokens-hf.json"), "w"), indent=1, ensure_ascii=False)
    fx2 = {"model": f"arch/{name}",
           "source": f"transformers {transformers.__version__} AutoTokenizer(text) (special tokens added as the tokenizer does)",
           "add_special": True, "parse_special": True,
           "cases": [{"text": s, "ids": hf(s)["input_ids"]} for s in ADDSPECIAL]}
    json.dump(fx2, open(os.path.join(outdir, f"{name}.tokens-hf-addspecial.json"), "w"), indent=1, ensure_ascii=False)

    if name == "gemma3-tiny":
        # Config-only Gemma3ForConditionalGeneration whose text_config is this model's.
        try:
            tc = dict(v5cfg)
            for k in ("architectures", "dtype", "transformers_version"):
                tc.pop(k, None)
            cc = transformers.Gemma3Config(
                text_config=tc,
                vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                               "num_attention_heads": 2, "image_size": 56, "patch_size": 14},
                mm_tokens_per_image=4, boi_token_index=10, eoi_token_index=11, image_token_index=1024)
            cc.architectures = ["Gemma3ForConditionalGeneration"]
            with tempfile.TemporaryDirectory() as td:
                cc.save_pretrained(td)
                shutil.copy(os.path.join(td, "config.json"), os.path.join(cdir, "gemma3-conditional.config.json"))
                back = AutoConfig.from_pretrained(td)
            t = back.text_config
            info["conditional_config_check"] = {
                "model_type": back.model_type, "text_model_type": t.model_type, "head_dim": t.head_dim,
                "layer_types": t.layer_types, "sliding_window": t.sliding_window,
                "rope_parameters": getattr(t, "rope_parameters", None),
                "same_text_fields": all(getattr(t, k) == getattr(c, k) for k in
                                        ["hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                                         "head_dim", "intermediate_size", "vocab_size", "sliding_window", "layer_types",
                                         "query_pre_attn_scalar", "rms_norm_eps"])}
            log(f"  conditional config: {info['conditional_config_check']}")
        except Exception as e:
            info["conditional_config_error"] = repr(e)
            traceback.print_exc()

    # Convert with llama.cpp's converter: the checkpoint as shipped, and with the
    # transformers-5 config form (to see whether the converter reads both alike).
    out = os.path.join(outdir, f"{name}.bf16.gguf")
    rc = run_convert(mdir, out, PRE.get(name), os.path.join(outdir, f"{name}.convert.log"))
    info["convert_rc"] = rc
    log(f"  convert rc {rc}")
    if rc == 0:
        with tempfile.TemporaryDirectory() as td:
            vdir = os.path.join(td, name)
            shutil.copytree(mdir, vdir)
            json.dump(v5cfg, open(os.path.join(vdir, "config.json"), "w"), indent=2)
            vout = os.path.join(td, "v5.gguf")
            rc2 = run_convert(vdir, vout, PRE.get(name), os.path.join(outdir, f"{name}.convert-v5config.log"))
            info["convert_v5config_rc"] = rc2
            if rc2 == 0:
                info["gguf_published_vs_transformers5_config"] = gguf_compare(out, vout)
                log(f"  gguf of the two config forms: {info['gguf_published_vs_transformers5_config']}")
    info["seconds"] = time.time() - t_start


def all_main(outdir, names):
    import numpy
    import safetensors
    import sentencepiece
    import tokenizers
    import torch
    import transformers
    torch.set_num_threads(min(16, os.cpu_count() or 1))
    text = open(KJV, encoding="utf-8").read()
    lines = text.splitlines(keepends=True)
    train_text = "".join(lines[: (2 * len(lines)) // 3])
    os.makedirs(outdir, exist_ok=True)
    rp = os.path.join(outdir, "hf_reference.json")
    report = json.load(open(rp)) if os.path.exists(rp) else {}
    report["versions"] = {"python": sys.version.split()[0], "torch": torch.__version__,
                          "transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
                          "safetensors": safetensors.__version__, "numpy": numpy.__version__,
                          "sentencepiece": sentencepiece.__version__,
                          "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    report["train_text"] = f"first {(2 * len(lines)) // 3} of {len(lines)} lines of kjv_eval.txt ({len(train_text)} chars)"
    failed = []
    for name in names:
        try:
            make_one(name, outdir, text, train_text, report)
        except Exception as e:
            traceback.print_exc()
            report.setdefault(name, {})["error"] = traceback.format_exc()
            failed.append(name)
        json.dump(report, open(rp, "w"), indent=1, default=str)
    log(f"done; failed: {failed}")


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "all":
        all_main(sys.argv[2], sys.argv[3:] or NAMES)
    elif len(sys.argv) == 6 and sys.argv[1] == "convert":
        convert_main(*sys.argv[2:])
    else:
        sys.exit(__doc__)

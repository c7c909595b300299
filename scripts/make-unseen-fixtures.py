#!/usr/bin/env python3
"""Make the reference fixtures in testdata/unseen/ (provenance record).

Two tiny checkpoints of architectures/tokenizers quantbridge's other
references do not cover, made with the real tools:

  qwen2-bpe-tied   Qwen2ForCausalLM: hidden 128, 4 layers, 4 heads, 2 KV heads,
                   FFN 352 (not a multiple of 256), tied embeddings, nonzero
                   q/k/v biases, config vocab padded past the tokenizer (as
                   Qwen2 does), byte-level BPE with Qwen2's pre-tokenizer,
                   NFC normalizer, no BOS, saved as sharded bf16.
  llama3-bpe-tied  LlamaForCausalLM: hidden 192, 4 layers, 4 heads,
                   head_dim 64 (!= 192/4), 2 KV heads, FFN 512, tied
                   embeddings, rope_theta 500000 with llama3 rope scaling
                   (factor 8, low 1, high 4, original 64) written in the
                   classic Llama-3.1 config.json form (rope_theta +
                   rope_scaling), Llama-3-style BPE (ignore_merges, BOS added
                   by a TemplateProcessing post-processor), single bf16 file.

Both tokenizers are trained by the `tokenizers` library on the first 2/3 of
testdata/kjv_eval.txt, and both models are trained briefly (GPU) on the same
text so that their logits are far from uniform.

References computed here (transformers, float32, eager attention, CPU):
  * token ids of the whole kjv_eval.txt: tokenizer(text) (special tokens as
    the tokenizer adds them);
  * perplexity with llama-perplexity's method at ctx 128 and 256: chunks of
    n_ctx tokens, BOS overwrites each chunk's first token only when the
    tokenizer adds BOS, positions n_ctx/2 .. n_ctx-2 score the next token,
    log-softmax in float64;
  * logits (F32) of the first chunk's first 64 positions and its tokens;
  * ids of llama.cpp's tokenizer test strings (models/ggml-vocab-*.gguf.inp,
    split on "\\n__ggml_vocab_test__\\n" as tests/test-tokenizer-0.cpp does)
    plus a few extra strings, encode(text, add_special_tokens=False).

Then llama.cpp's convert_hf_to_gguf.py (reference commit 34af94cd) converts
both checkpoints (--outtype bf16, and f16 for qwen2). Its BPE pre-tokenizer
detection hashes the tokenizer's output on a fixed text against hashes of
known published tokenizers; a freshly trained vocabulary matches none, so
this script monkeypatches get_vocab_base_pre to return "qwen2" and
"llama-bpe" respectively (the pre-tokenizers really are those: the Split
regexes above are copied from Qwen2's and Llama 3's tokenizer.json).

Usage (on the device, from the repository root, with the converter copied to
.refconv/: convert_hf_to_gguf.py, conversion/, gguf-py/, the .inp files):

  python3 scripts/make-unseen-fixtures.py all OUTDIR
  python3 scripts/make-unseen-fixtures.py convert MODELDIR OUTFILE OUTTYPE PRE
"""

import json
import math
import os
import subprocess
import sys
import time

REFCONV = os.path.abspath(".refconv")
KJV = "testdata/kjv_eval.txt"

QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
               r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

QWEN2_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
LLAMA3_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                   "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>",
                   "<|reserved_special_token_2|>", "<|start_header_id|>", "<|end_header_id|>",
                   "<|eom_id|>", "<|eot_id|>", "<|python_tag|>"]
VOCAB_TOTAL = 1024  # tokenizer size: BPE pieces + specials
TRAIN_STEPS = 120

QWEN2_CHAT = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
              "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
              "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
              "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
LLAMA3_CHAT = ("{% set loop_messages = messages %}{% for message in loop_messages %}"
               "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
               "+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
               "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
               "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")

# Extra tokenizer cases beyond llama.cpp's test strings: special tokens in
# text, the converter's pre-tokenizer probe text, digits, whitespace runs.
EXTRA_CASES = [
    "<|im_start|>user\nAnd Ruth said, Intreat me not<|im_end|>\n<|im_start|>assistant\n",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhither thou goest<|eot_id|>",
    "<|endoftext|>The LORD<|end_of_text|>",
    "Chapter 1:16 and 12345678 and 3.14159, 2024-08-01",
    "Thy people shall be my people, and thy God my God:\n\n\n   where thou diest, will I die",
    "  leading spaces\tand\ttabs \r\n CRLF  trailing  ",
    "I've been 'told he's there, 'RE you sure? 'M not sure I'll make it, 'D you like some tea? We'Ve a'lL",
    ("\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u200d🌫️ (multiple emojis concatenated) "
     "✅ 🦙🦙 3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 កាន់តែពិសេសអាច😁 "
     "?我想在apple工作1314151天～ ------======= нещо на Български ''''''```````\"\"\"\"......!!!!!!?????? "
     "I've been 'told he's there, 'RE you sure? 'M not sure I'll make it, 'D you like some tea? We'Ve a'lL"),
]


def log(*a):
    print(*a, flush=True)


def read_inp(path):
    raw = open(path, encoding="utf-8").read()
    sep = "\n__ggml_vocab_test__\n"
    out, pos = [], 0
    while pos < len(raw):
        nxt = raw.find(sep, pos)
        if nxt < 0:
            out.append(raw[pos:])
            break
        out.append(raw[pos:nxt])
        pos = nxt + len(sep)
    return out


# --------------------------------------------------------------- tokenizers

def train_tokenizer(kind, train_text):
    from tokenizers import Tokenizer, Regex, models, pre_tokenizers, decoders, trainers, normalizers, processors
    regex = QWEN2_REGEX if kind == "qwen2" else LLAMA3_REGEX
    specials = QWEN2_SPECIALS if kind == "qwen2" else LLAMA3_SPECIALS
    tok = Tokenizer(models.BPE())
    if kind == "qwen2":
        tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=kind != "qwen2", use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    n_bpe = VOCAB_TOTAL - len(specials)
    trainer = trainers.BpeTrainer(vocab_size=n_bpe, min_frequency=1, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    tok.train_from_iterator([train_text], trainer=trainer)
    got = tok.get_vocab_size()
    if got != n_bpe:
        raise SystemExit(f"{kind}: trainer made {got} pieces, want {n_bpe}")
    # Edit the JSON form so every field is exactly as in the real tokenizer.json.
    j = json.loads(tok.to_str())
    m = j["model"]
    m.update({"dropout": None, "unk_token": None, "continuing_subword_prefix": None,
              "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
              "ignore_merges": kind == "llama3"})
    if kind == "qwen2":
        j["post_processor"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    tok = Tokenizer.from_str(json.dumps(j))
    from tokenizers import AddedToken
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    if kind == "llama3":
        bos = tok.token_to_id("<|begin_of_text|>")
        tok.post_processor = processors.Sequence([
            processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True),
            processors.TemplateProcessing(
                single="<|begin_of_text|> $A:0",
                pair="<|begin_of_text|> $A:0 <|begin_of_text|> $B:1",
                special_tokens=[("<|begin_of_text|>", bos)]),
        ])
    assert tok.get_vocab_size() == VOCAB_TOTAL, tok.get_vocab_size()
    for i, s in enumerate(specials):
        assert tok.token_to_id(s) == n_bpe + i, (s, tok.token_to_id(s))
    return tok


def tokenizer_config(kind, tok):
    specials = QWEN2_SPECIALS if kind == "qwen2" else LLAMA3_SPECIALS
    added = {str(tok.token_to_id(s)): {"content": s, "lstrip": False, "normalized": False, "rstrip": False,
                                       "single_word": False, "special": True} for s in specials}
    if kind == "qwen2":
        return {
            "add_bos_token": False,
            "add_prefix_space": False,
            "added_tokens_decoder": added,
            "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
            "bos_token": None,
            "chat_template": QWEN2_CHAT,
            "clean_up_tokenization_spaces": False,
            "eos_token": "<|endoftext|>",
            "errors": "replace",
            "model_max_length": 32768,
            "pad_token": "<|endoftext|>",
            "split_special_tokens": False,
            "tokenizer_class": "Qwen2Tokenizer",
            "unk_token": None,
        }
    return {
        "added_tokens_decoder": added,
        "bos_token": "<|begin_of_text|>",
        "chat_template": LLAMA3_CHAT,
        "clean_up_tokenization_spaces": True,
        "eos_token": "<|end_of_text|>",
        "model_input_names": ["input_ids", "attention_mask"],
        "model_max_length": 131072,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }


# ------------------------------------------------------------------- models

def make_config(kind):
    import transformers
    if kind == "qwen2":
        kw = dict(vocab_size=VOCAB_TOTAL + 32, hidden_size=128, intermediate_size=352, num_hidden_layers=4,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                  rms_norm_eps=1e-6, tie_word_embeddings=True, use_sliding_window=False,
                  bos_token_id=VOCAB_TOTAL - 3, eos_token_id=VOCAB_TOTAL - 3)
        try:
            cfg = transformers.Qwen2Config(**kw, rope_parameters={"rope_type": "default", "rope_theta": 1000000.0})
        except TypeError:
            cfg = transformers.Qwen2Config(**kw, rope_theta=1000000.0)
        cfg.architectures = ["Qwen2ForCausalLM"]
        return cfg
    kw = dict(vocab_size=VOCAB_TOTAL, hidden_size=192, intermediate_size=512, num_hidden_layers=4,
              num_attention_heads=4, num_key_value_heads=2, head_dim=64, max_position_embeddings=512,
              rms_norm_eps=1e-5, tie_word_embeddings=True, attention_bias=False, mlp_bias=False,
              bos_token_id=VOCAB_TOTAL - 11, eos_token_id=VOCAB_TOTAL - 10)
    rope = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 64}
    try:
        cfg = transformers.LlamaConfig(**kw, rope_parameters=rope)
    except TypeError:
        r = dict(rope)
        theta = r.pop("rope_theta")
        cfg = transformers.LlamaConfig(**kw, rope_theta=theta, rope_scaling=r)
    cfg.architectures = ["LlamaForCausalLM"]
    return cfg


def classic_llama3_config(path):
    """Rewrite config.json in the form Meta's Llama 3.1 checkpoints use."""
    c = json.load(open(path))
    c.pop("rope_parameters", None)
    c["rope_theta"] = 500000.0
    c["rope_scaling"] = {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 64, "rope_type": "llama3"}
    with open(path, "w") as f:
        json.dump(c, f, indent=2, sort_keys=True)
        f.write("\n")


def train_model(model, ids, steps, seed):
    """A short fixed-length run: enough to make the logits far from uniform,
    short of memorizing the tiny training text."""
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
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 25 == 0:
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


# ------------------------------------------------------------------ convert

def convert_main(model_dir, outfile, outtype, pre):
    sys.path.insert(0, os.path.join(REFCONV, "gguf-py"))
    sys.path.insert(0, REFCONV)
    import conversion.base as cb
    patched = []
    for name in dir(cb):
        obj = getattr(cb, name)
        if isinstance(obj, type) and "get_vocab_base_pre" in obj.__dict__:
            setattr(obj, "get_vocab_base_pre", lambda self, tokenizer: pre)
            patched.append(name)
    log(f"convert: get_vocab_base_pre patched on {patched} to return {pre!r}")
    import convert_hf_to_gguf
    sys.argv = ["convert_hf_to_gguf.py", model_dir, "--outtype", outtype, "--outfile", outfile]
    convert_hf_to_gguf.main()


# --------------------------------------------------------------------- all

def make_one(kind, name, outdir, text, train_text, report):
    import torch
    import transformers
    from transformers import AutoTokenizer, AutoModelForCausalLM
    from tokenizers import Tokenizer
    log(f"== {name}")
    mdir = os.path.join(outdir, name)
    os.makedirs(mdir, exist_ok=True)
    tok = train_tokenizer(kind, train_text)
    tok.save(os.path.join(mdir, "tokenizer.json"))
    tcfg = tokenizer_config(kind, tok)
    json.dump(tcfg, open(os.path.join(mdir, "tokenizer_config.json"), "w"), indent=2, ensure_ascii=False)

    raw = Tokenizer.from_file(os.path.join(mdir, "tokenizer.json"))
    # The transformers tokenizer must agree with the raw tokenizers pipeline.
    probe = [text] + read_inp(os.path.join(REFCONV, "ggml-vocab-llama-bpe.gguf.inp")) + EXTRA_CASES

    def disagree(hf):
        for s in probe:
            if hf(s)["input_ids"] != raw.encode(s).ids:
                return s
        return None

    hf = AutoTokenizer.from_pretrained(mdir)
    log(f"  AutoTokenizer class {type(hf).__name__}")
    bad = disagree(hf)
    if bad is not None and tcfg["tokenizer_class"] != "PreTrainedTokenizerFast":
        log(f"  {tcfg['tokenizer_class']} disagrees with tokenizer.json on {bad[:60]!r}; using PreTrainedTokenizerFast")
        tcfg["tokenizer_class"] = "PreTrainedTokenizerFast"
        json.dump(tcfg, open(os.path.join(mdir, "tokenizer_config.json"), "w"), indent=2, ensure_ascii=False)
        hf = AutoTokenizer.from_pretrained(mdir)
        bad = disagree(hf)
    if bad is not None:
        raise SystemExit(f"{name}: AutoTokenizer and tokenizers disagree on {bad[:60]!r}")
    ids = hf(text)["input_ids"]
    add_bos = kind == "llama3"
    bos = tok.token_to_id("<|begin_of_text|>") if add_bos else None
    if add_bos:
        assert ids[0] == bos and ids.count(bos) == 1
    else:
        assert all(i < VOCAB_TOTAL - 3 for i in ids), "qwen2: a special token in kjv ids"
    log(f"  kjv ids: {len(ids)} (without the trailing newline: {len(hf(text[:-1])['input_ids'])})")

    cfg = make_config(kind)
    torch.manual_seed(1234)
    model = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager")
    model.to(torch.float32)
    if kind == "qwen2":
        with torch.no_grad():
            for layer in model.model.layers:
                for p in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
                    assert p.bias is not None
                    p.bias.normal_(0.0, 0.1)
    train_ids = hf(train_text)["input_ids"]
    steps, loss = train_model(model, train_ids, TRAIN_STEPS, 1234)
    model.to(torch.bfloat16)
    kw = {"max_shard_size": "900KB"} if kind == "qwen2" else {}
    model.save_pretrained(mdir, **kw)
    if kind == "llama3":
        v5_config = open(os.path.join(mdir, "config.json")).read()
        classic_llama3_config(os.path.join(mdir, "config.json"))
    files = sorted(os.listdir(mdir))
    log(f"  files: {files}")
    if kind == "qwen2":
        shards = [f for f in files if f.startswith("model-") and f.endswith(".safetensors")]
        assert 2 <= len(shards) <= 3 and "model.safetensors.index.json" in files, files

    # Reference forward pass: the saved bf16 weights in float32, eager attention, CPU.
    ref = AutoModelForCausalLM.from_pretrained(mdir, dtype=torch.float32, attn_implementation="eager")
    ref.eval()
    c = ref.config
    rp = getattr(c, "rope_parameters", None) or getattr(c, "rope_scaling", None)
    log(f"  loaded config rope: {rp}; tie {c.tie_word_embeddings}")
    assert c.tie_word_embeddings
    if kind == "llama3":
        assert rp and rp.get("rope_type") == "llama3" and rp.get("factor") == 8.0, rp
        # The classic config means what transformers' own (rope_parameters) form meant.
        import shutil
        import tempfile
        with tempfile.TemporaryDirectory() as td:
            for f in files:
                shutil.copy(os.path.join(mdir, f), td)
            open(os.path.join(td, "config.json"), "w").write(v5_config)
            other = AutoModelForCausalLM.from_pretrained(td, dtype=torch.float32, attn_implementation="eager")
            with torch.no_grad():
                x = torch.tensor([ids[:128]])
                d = (ref(input_ids=x).logits - other(input_ids=x).logits).abs().max().item()
        log(f"  classic config vs rope_parameters config: max |logit diff| {d}")
        assert d == 0.0, d
    from safetensors.torch import load_file
    names = set()
    for f in files:
        if f.endswith(".safetensors"):
            names |= set(load_file(os.path.join(mdir, f)).keys())
    assert "lm_head.weight" not in names, "tied checkpoint has lm_head.weight"

    res = {"n_tokens": len(ids), "add_bos": add_bos, "bos": bos, "train_steps": steps, "train_loss": loss,
           "tokenizer_class": type(hf).__name__}
    for n_ctx in (128, 256):
        p, running, count = ppl_llamacpp(ref, ids, n_ctx, add_bos, bos)
        res[f"ppl_ctx{n_ctx}"] = {"ppl": p, "running": running, "scored_tokens": count,
                                  "chunks": len(ids) // n_ctx}
        log(f"  ppl ctx {n_ctx}: {p:.6f} ({count} tokens)")
    chunk = list(ids[:128])
    if add_bos:
        chunk[0] = bos
    with torch.no_grad():
        logits = ref(input_ids=torch.tensor([chunk])).logits[0, :64].float().contiguous()
    from safetensors.torch import save_file
    save_file({"tokens": torch.tensor(chunk, dtype=torch.int32), "logits": logits},
              os.path.join(outdir, f"{name}.ref_logits.safetensors"))
    json.dump({"kjv_eval.txt": ids}, open(os.path.join(outdir, f"{name}.eval_token_ids.json"), "w"))

    # Tokenizer fixtures (perplexity/tokenizer_fixture_test.go format).
    inp = "ggml-vocab-qwen2.gguf.inp" if kind == "qwen2" else "ggml-vocab-llama-bpe.gguf.inp"
    cases = [{"text": s, "ids": hf.encode(s, add_special_tokens=False)} for s in read_inp(os.path.join(REFCONV, inp)) + EXTRA_CASES]
    fx = {"model": f"unseen/{name}",
          "source": f"transformers {transformers.__version__} AutoTokenizer.encode(text, add_special_tokens=False) "
                    f"on llama.cpp models/{inp} (split on __ggml_vocab_test__) plus extra strings",
          "add_special": False, "parse_special": True, "cases": cases}
    json.dump(fx, open(os.path.join(outdir, f"tokenizers-unseen-{name}.json"), "w"), indent=1, ensure_ascii=False)
    fx2 = {"model": f"unseen/{name}",
           "source": f"transformers {transformers.__version__} AutoTokenizer(text) (special tokens added as the tokenizer does)",
           "add_special": True, "parse_special": True,
           "cases": [{"text": s, "ids": hf(s)["input_ids"]} for s in EXTRA_CASES[:4] + ["", "Hello"]]}
    json.dump(fx2, open(os.path.join(outdir, f"tokenizers-unseen-{name}-addspecial.json"), "w"), indent=1, ensure_ascii=False)
    report[name] = res


def all_main(outdir):
    import numpy
    import safetensors
    import tokenizers
    import torch
    import transformers
    torch.set_num_threads(min(16, os.cpu_count() or 1))
    text = open(KJV, encoding="utf-8").read()
    lines = text.splitlines(keepends=True)
    train_text = "".join(lines[: (2 * len(lines)) // 3])
    os.makedirs(outdir, exist_ok=True)
    report = {"versions": {"python": sys.version.split()[0], "torch": torch.__version__,
                           "transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
                           "safetensors": safetensors.__version__, "numpy": numpy.__version__,
                           "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
              "train_text": f"first {(2 * len(lines)) // 3} of {len(lines)} lines of kjv_eval.txt ({len(train_text)} chars)"}
    make_one("qwen2", "qwen2-bpe-tied", outdir, text, train_text, report)
    make_one("llama3", "llama3-bpe-tied", outdir, text, train_text, report)
    json.dump(report, open(os.path.join(outdir, "hf_reference.json"), "w"), indent=1)
    me = os.path.abspath(__file__)
    for name, outtype, pre in [("qwen2-bpe-tied", "bf16", "qwen2"), ("qwen2-bpe-tied", "f16", "qwen2"),
                               ("llama3-bpe-tied", "bf16", "llama-bpe")]:
        out = os.path.join(outdir, f"{name}.{outtype}.gguf")
        subprocess.run([sys.executable, me, "convert", os.path.join(outdir, name), out, outtype, pre], check=True)
    log("done")


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "all":
        all_main(sys.argv[2])
    elif len(sys.argv) == 6 and sys.argv[1] == "convert":
        convert_main(*sys.argv[2:])
    else:
        sys.exit(__doc__)

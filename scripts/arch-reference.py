#!/usr/bin/env python3
"""Run llama.cpp on the testdata/arch fixtures and assemble testdata/arch/reference.json.

Python standard library only. Generalises scripts/unseen-reference.py to the
five fixtures of testdata/arch (README.md there): MoE (3-D) tensors, K-quant
types, GGUF metadata, llama-tokenize on tricky strings.

  python3 scripts/arch-reference.py run WORK [NAME ...]
      for each NAME: llama-quantize NAME.bf16.gguf to every type in TYPES
      (2 threads), llama-perplexity -c 128 -b 128 -t 2 --no-warmup on the bf16
      file and each quantized one (repeated until its log is complete), one
      more one-chunk run at -lv 4 on the bf16 file for llama.cpp's print_info lines,
      llama-tokenize on kjv_eval.txt and on each tricky string. Outputs go to
      WORK; existing outputs are kept. The bf16 GGUF is read from
      testdata/arch/NAME.bf16.gguf, else WORK/NAME.bf16.gguf (a file not kept
      in the repository). LLAMA_BIN (default ~/llama.cpp/build/bin) holds the tools.
  python3 scripts/arch-reference.py assemble WORK [NAME ...]
      writes testdata/arch/reference.json and testdata/arch/NAME.tokens-llamacpp*.json.
"""

import collections
import hashlib
import json
import os
import re
import struct
import subprocess
import sys

ARCH = "testdata/arch"
KJV = "testdata/kjv_eval.txt"
NAMES = ["qwen3-tiny", "mixtral-tiny", "qwen3moe-tiny", "gemma3-tiny", "phi3-tiny"]
TYPES = ["Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_K_S", "Q3_K_M", "Q2_K", "Q4_0"]
LLAMA_BIN = os.environ.get("LLAMA_BIN", os.path.expanduser("~/llama.cpp/build/bin"))
COMMIT = "34af94cd9ab277632e27caeec2d41de2fd091b31"

# ggml type ids -> names (ggml.h at the reference commit).
GGML_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1",
              10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K", 30: "BF16"}
BLOCK = {0: (1, 4), 1: (1, 2), 30: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34),
         10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210)}
TOKEN_TYPES = {1: "NORMAL", 2: "UNKNOWN", 3: "CONTROL", 4: "USER_DEFINED", 5: "UNUSED", 6: "BYTE"}


def gguf_read(path):
    """(kv dict, tensor list) of a GGUF v3 file; tensors: name, type, shape (outermost first), sha256."""
    data = open(path, "rb").read()
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return v[0]

    def string():
        nonlocal pos
        n = take("Q")
        s = data[pos:pos + n].decode("utf-8", errors="surrogateescape")
        pos += n
        return s

    sizes = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}

    def value(t):
        if t == 8:
            return string()
        if t == 9:
            et, n = take("I"), take("Q")
            return [value(et) for _ in range(n)]
        return take(sizes[t])

    assert data[:4] == b"GGUF", path
    pos = 4
    version, n_tensors, n_kv = take("I"), take("Q"), take("Q")
    assert version == 3
    kv = {}
    for _ in range(n_kv):
        k = string()
        kv[k] = value(take("I"))
    align = kv.get("general.alignment", 32)
    infos = []
    for _ in range(n_tensors):
        name = string()
        nd = take("I")
        ne = [take("Q") for _ in range(nd)]
        typ = take("I")
        off = take("Q")
        infos.append((name, ne, typ, off))
    data_start = (pos + align - 1) // align * align
    out = []
    for name, ne, typ, off in infos:
        bs, bb = BLOCK[typ]
        n = 1
        for d in ne:
            n *= d
        assert ne[0] % bs == 0, (name, ne, typ)
        size = n // bs * bb
        assert data_start + off + size <= len(data), (name, off, size)
        b = data[data_start + off:data_start + off + size]
        out.append({"name": name, "type": GGML_TYPES[typ], "shape": list(reversed(ne)),
                    "sha256": hashlib.sha256(b).hexdigest()})
    return kv, out


def kv_summary(kv):
    """Metadata as JSON: scalars as they are, long arrays as length + sha256 of their JSON."""
    out = {}
    for k, v in kv.items():
        if isinstance(v, list) and len(v) > 64:
            out[k] = {"array_len": len(v), "sha256_of_json": hashlib.sha256(
                json.dumps(v, ensure_ascii=False).encode("utf-8", errors="surrogateescape")).hexdigest()}
        elif isinstance(v, float):
            out[k] = v
        else:
            out[k] = v
    return out


def vocab_summary(kv):
    toks = kv.get("tokenizer.ggml.tokens")
    types = kv.get("tokenizer.ggml.token_type")
    if toks is None:
        return None
    s = {"n_tokens": len(toks), "model": kv.get("tokenizer.ggml.model"), "pre": kv.get("tokenizer.ggml.pre")}
    if types:
        s["token_type_counts"] = dict(collections.Counter(TOKEN_TYPES.get(t, str(t)) for t in types))
        s["non_normal_tokens"] = [[i, toks[i], TOKEN_TYPES.get(t, str(t))] for i, t in enumerate(types)
                                  if t not in (1, 6, 5)][:400]
        unused = [i for i, t in enumerate(types) if t == 5]
        if unused:
            s["unused_ids"] = [unused[0], unused[-1], len(unused)]
            s["unused_first_tokens"] = [toks[i] for i in unused[:3]]
    return s


def file_entry(path):
    b = open(path, "rb").read()
    kv, tensors = gguf_read(path)
    return {"sha256": hashlib.sha256(b).hexdigest(), "size": len(b), "tensors": tensors}, kv


def parse_ppl(txt):
    running = [float(v) for v in re.findall(r"\[\d+\](\d+\.\d+),", txt)]
    m = re.search(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)", txt)
    n = re.search(r"calculating perplexity over (\d+) chunks", txt)
    if not m or not n or len(running) != int(n.group(1)):
        return None
    return {"ppl": float(m.group(1)), "stderr": float(m.group(2)), "running": running, "chunks": int(n.group(1))}


def bf16_path(name, work):
    p = os.path.join(ARCH, f"{name}.bf16.gguf")
    return p if os.path.exists(p) else os.path.join(work, f"{name}.bf16.gguf")


def tool(name):
    return os.path.join(LLAMA_BIN, name)


def run_perplexity(model, out_prefix, tries=8):
    """llama-perplexity's log is asynchronous; repeat until a run's log is complete."""
    results = []
    for attempt in range(tries):
        with open(out_prefix + ".out", "w") as fo, open(out_prefix + ".err", "w") as fe:
            r = subprocess.run([tool("llama-perplexity"), "-m", model, "-f", KJV, "-c", "128", "-b", "128", "-t", "2",
                                "--no-warmup"], stdout=fo, stderr=fe)
        txt = open(out_prefix + ".out").read() + open(out_prefix + ".err").read()
        p = parse_ppl(txt)
        results.append(p is not None)
        if r.returncode == 0 and p is not None:
            with open(out_prefix + ".ppl.txt", "w") as f:
                f.write(txt)
            return attempt + 1
    raise SystemExit(f"{model}: no complete llama-perplexity log in {tries} runs")


def tokenize(model, path, no_bos):
    cmd = [tool("llama-tokenize"), "-m", model, "-f", path, "--ids", "--no-escape", "--log-disable"]
    if no_bos:
        cmd.append("--no-bos")
    r = subprocess.run(cmd, capture_output=True)
    if r.returncode != 0:
        return {"error": r.stderr.decode("utf-8", "replace")[-500:], "rc": r.returncode}
    lines = r.stdout.decode("utf-8").strip().splitlines()
    return json.loads(lines[-1]) if lines else []


def run_main(work, names):
    os.makedirs(work, exist_ok=True)
    for name in names:
        src = bf16_path(name, work)
        print(f"== {name} ({src})", flush=True)
        for typ in TYPES:
            out = os.path.join(work, f"{name}.{typ}.gguf")
            if not os.path.exists(out):
                with open(os.path.join(work, f"{name}.{typ}.quantize.log"), "w") as lf:
                    subprocess.run([tool("llama-quantize"), src, out, typ, "2"], stdout=lf, stderr=subprocess.STDOUT,
                                   check=True)
        for typ in ["bf16"] + TYPES:
            model = src if typ == "bf16" else os.path.join(work, f"{name}.{typ}.gguf")
            prefix = os.path.join(work, f"{name}.{typ}")
            if not os.path.exists(prefix + ".ppl.txt"):
                n = run_perplexity(model, prefix)
                print(f"  {typ}: llama-perplexity complete after {n} run(s)", flush=True)
        info = os.path.join(work, f"{name}.bf16.info.txt")
        if not os.path.exists(info):
            # one chunk at log verbosity 4: llama.cpp's print_info / llama_context lines (hparams as loaded)
            with open(info, "w") as f:
                subprocess.run([tool("llama-perplexity"), "-m", src, "-f", KJV, "-c", "128", "-b", "128", "-t", "2",
                                "--no-warmup", "--chunks", "1", "-lv", "4"], stdout=f, stderr=subprocess.STDOUT,
                               check=True)
        with open(os.path.join(work, f"{name}.tokenize.txt"), "w") as f:
            f.write(json.dumps(tokenize(src, KJV, False)) + "\n")
        tdir = os.path.join(work, "tok")
        os.makedirs(tdir, exist_ok=True)
        res = {}
        for kind, no_bos in (("", True), ("-addspecial", False)):
            fx = json.load(open(os.path.join(ARCH, f"{name}.tokens-hf{kind}.json")))
            got = []
            for i, c in enumerate(fx["cases"]):
                p = os.path.join(tdir, f"{name}{kind}.{i:02d}.txt")
                with open(p, "wb") as f:
                    f.write(c["text"].encode("utf-8"))
                got.append(tokenize(src, p, no_bos))
            res[kind or "plain"] = got
        json.dump(res, open(os.path.join(work, f"{name}.tokenize-cases.json"), "w"))


def category(tname):
    return re.sub(r"^blk\.\d+\.", "", tname).replace(".weight", "")


def assemble_main(work, names=None):
    hfref = json.load(open(os.path.join(ARCH, "hf_reference.json")))
    ref = {
        "about": "see README.md; transformers figures from scripts/make-arch-fixtures.py, GGUF files and "
                 f"figures from llama.cpp {COMMIT} via scripts/arch-reference.py",
        "versions": hfref["versions"],
        "llama_cpp_commit": COMMIT,
        "models": {},
    }
    for name in names or NAMES:
        if name not in hfref or "ppl_ctx128" not in hfref[name]:
            continue
        h = hfref[name]
        m = {"n_tokens": h["n_tokens"], "add_bos": h["add_bos"], "bos": h["bos"] if h["bos"] is not None else -1,
             "transformers_fp32": {}, "gguf": {}}
        for ctx in (128, 256):
            p = h[f"ppl_ctx{ctx}"]
            m["transformers_fp32"][f"ctx{ctx}"] = {"ppl": p["ppl"], "chunks": p["chunks"], "scored": p["scored_tokens"],
                                                  "running": p["running"]}
        src = bf16_path(name, work)
        bf16_kv = None
        for typ in ["bf16"] + TYPES:
            path = src if typ == "bf16" else os.path.join(work, f"{name}.{typ}.gguf")
            if not os.path.exists(path):
                continue
            e, kv = file_entry(path)
            if typ == "bf16":
                bf16_kv = kv
                e["kept_in_repository"] = path.startswith(ARCH)
                e["metadata"] = kv_summary(kv)
                e["vocab"] = vocab_summary(kv)
            else:
                e["metadata_differing_from_bf16"] = {k: v for k, v in kv_summary(kv).items()
                                                     if kv_summary({k: bf16_kv.get(k)}).get(k) != v}
                by = collections.defaultdict(collections.Counter)
                for t in e["tensors"]:
                    by[category(t["name"])][t["type"]] += 1
                e["types_by_tensor"] = {k: dict(v) for k, v in sorted(by.items())}
            pp = os.path.join(work, f"{name}.{typ}.ppl.txt")
            if os.path.exists(pp):
                txt = open(pp).read()
                e["llama_perplexity_ctx128"] = parse_ppl(txt)
            m["gguf"][typ] = e
        info = os.path.join(work, f"{name}.bf16.info.txt")
        if os.path.exists(info):
            m["gguf"]["bf16"]["llama_print_info"] = [
                re.sub(r"^[0-9.]+ [A-Z] ", "", ln).strip() for ln in open(info, encoding="utf-8", errors="replace")
                if re.search(r"(print_info|llama_context|llama_kv_cache|load_tensors): ", ln)
                and not re.search(r"print_info: (file size|model params)|CPU_REPACK|buffer size|graph", ln)]
        tk = os.path.join(work, f"{name}.tokenize.txt")
        if os.path.exists(tk):
            ids = json.loads(open(tk).read().strip().splitlines()[-1])
            hf_ids = json.load(open(os.path.join(ARCH, f"{name}.eval_token_ids.json")))["kjv_eval.txt"]
            first = next((i for i, (a, b) in enumerate(zip(ids, hf_ids)) if a != b), None)
            m["llama_tokenize"] = {
                "command": f"llama-tokenize -m {name}.bf16.gguf -f kjv_eval.txt --ids --no-escape --log-disable",
                "n": len(ids), "same_as_transformers": ids == hf_ids, "first_difference": first,
                "note": "llama-tokenize reads -f verbatim (keeps the trailing newline); "
                        "llama-perplexity -f drops one trailing newline (common/arg.cpp)",
            }
            if ids != hf_ids:
                m["llama_tokenize"]["ids"] = ids
        tc = os.path.join(work, f"{name}.tokenize-cases.json")
        if os.path.exists(tc):
            got = json.load(open(tc))
            summary = {}
            for kind in ("", "-addspecial"):
                fx = json.load(open(os.path.join(ARCH, f"{name}.tokens-hf{kind}.json")))
                ll = got[kind or "plain"]
                cases = []
                diff = []
                for c, ids in zip(fx["cases"], ll):
                    cases.append({"text": c["text"], "ids": ids})
                    if ids != c["ids"]:
                        diff.append({"text": c["text"], "transformers": c["ids"], "llama_tokenize": ids})
                out = {"model": f"arch/{name}",
                       "source": f"llama-tokenize (llama.cpp {COMMIT[:8]}) -m {name}.bf16.gguf -f CASE --ids --no-escape"
                                 + (" --no-bos" if not kind else "") + " (parses special tokens by default)",
                       "add_special": kind == "-addspecial", "parse_special": True, "cases": cases}
                with open(os.path.join(ARCH, f"{name}.tokens-llamacpp{kind}.json"), "w") as f:
                    json.dump(out, f, indent=1, ensure_ascii=False)
                    f.write("\n")
                summary["add_special" if kind else "no_special"] = {"cases": len(cases), "same": len(cases) - len(diff),
                                                                   "differ": diff}
            m["tricky_strings"] = summary
        ref["models"][name] = m
    with open(os.path.join(ARCH, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "run":
        run_main(sys.argv[2], sys.argv[3:] or NAMES)
    elif len(sys.argv) >= 3 and sys.argv[1] == "assemble":
        assemble_main(sys.argv[2], sys.argv[3:])
    else:
        sys.exit(__doc__)

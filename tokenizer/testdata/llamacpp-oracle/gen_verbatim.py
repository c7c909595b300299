# Writes testdata/tokenizers/{verbatim,escape}-*.json: llama-tokenize ids (llama.cpp 34af94cd) for texts with
# backslashes, tabs, CRLF and non-ASCII, read verbatim (--no-escape) and with escapes processed.
# Run from anywhere after building llama.cpp in ~/llama.cpp/build; paths below are the ones used.
import json, subprocess, sys, os
LT = os.path.expanduser("~/llama.cpp/build/bin/llama-tokenize")
texts = [
    'printf("a\\n b\\t\\x41 \\x4 \\q end\\\\");\n',
    "col1\tcol2\t\tcol3\n\tindented\t \n",
    "line one\r\nline two\r\n\r\nthree\r\n",
    "Ünïcödé — “quotes” 日本語のテキスト 🦙 café naïve Ελληνικά Русский\n",
    'path C:\\Users\\x\\new\ttab\r\n"quoted \\"esc\\"" ünï\\xe2\\x80\\x94 \\x4g \\x 9 \\x-1 \\',
    "\\\\n literally, \\\\t too: \"\\n\" and '\\t'\n\n",
    "trailing backslash x\\\n",
]
models = {
    "kjv-llama": "/work/shared/testdata/llama.cpp/kjv-llama.bf16.gguf",
    "unseen/llama3-bpe-tied.bf16.gguf": "/work/wt-tok/testdata/unseen/llama3-bpe-tied.bf16.gguf",
    "unseen/qwen2-bpe-tied.bf16.gguf": "/work/wt-tok/testdata/unseen/qwen2-bpe-tied.bf16.gguf",
}
def tok(gguf, text, escape):
    with open("/tmp/tokgen/in.txt", "wb") as f:
        f.write(text.encode())
    args = [LT, "-m", gguf, "-f", "/tmp/tokgen/in.txt", "--ids", "--log-disable", "--no-parse-special"]
    if not escape:
        args.append("--no-escape")
    out = subprocess.run(args, capture_output=True, check=True).stdout.decode().strip().splitlines()[-1]
    return json.loads(out)
for name, gguf in models.items():
    for escape in (False, True):
        fx = {"model": name,
              "source": "llama-tokenize -m %s -f FILE --ids --log-disable --no-parse-special%s (llama.cpp 34af94cd); FILE holds text verbatim" % (os.path.basename(gguf), "" if escape else " --no-escape"),
              "add_special": True, "parse_special": False, "escape": escape,
              "cases": [{"text": t, "ids": tok(gguf, t, escape)} for t in texts]}
        base = name.split("/")[-1].replace(".bf16.gguf", "")
        fn = "/work/wt-tok/testdata/tokenizers/%s-%s.json" % ("escape" if escape else "verbatim", base)
        with open(fn, "w") as f:
            json.dump(fx, f, ensure_ascii=False, indent=1)
        print(fn, [len(c["ids"]) for c in fx["cases"]])

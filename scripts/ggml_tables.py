"""Readers of llama.cpp's C tables, shared by the scripts/gen-*-tables.py
generators (import ggml_tables; run those scripts as scripts/NAME.py so that
scripts/ is on the module path).

sources(root) reads ggml-quants.c and ggml-common.h; c_array reads a static
C array initializer, table a GGML_TABLE_BEGIN(type, name, size) ...
GGML_TABLE_END() block; both check the number of values when n is given;
ksigns_ok checks ksigns_iq2xs's rule (7 sign bits plus their parity).
"""
import os
import re
import sys

_NUMBER = r"0x[0-9a-fA-F]+|\d+"


def sources(argv):
    """ggml-quants.c and ggml-common.h of LLAMA_CPP_DIR (argv[1], default
    ~/llama.cpp)."""
    root = argv[1] if len(argv) > 1 else os.path.expanduser("~/llama.cpp")
    quants = open(os.path.join(root, "ggml/src/ggml-quants.c")).read()
    common = open(os.path.join(root, "ggml/src/ggml-common.h")).read()
    return quants, common


def _values(what, body, n):
    body = re.sub(r"//[^\n]*", "", body)
    vals = [int(v, 0) for v in re.findall(_NUMBER, body)]
    if n is not None and len(vals) != n:
        sys.exit("%s: %d values, want %d" % (what, len(vals), n))
    return vals


def c_array(src, decl_re, n=None):
    m = re.search(decl_re + r"[^{]*\{(.*?)\}", src, re.S)
    if not m:
        sys.exit("table not found: " + decl_re)
    return _values(decl_re, m.group(1), n)


def table(src, name, size, n=None):
    m = re.search(r"GGML_TABLE_BEGIN\(\w+, %s, %s\)(.*?)GGML_TABLE_END" % (name, size), src, re.S)
    if not m:
        sys.exit("table not found: " + name)
    return _values(name, m.group(1), n)


def ksigns_ok(ksigns):
    return ksigns == [i | ((bin(i).count("1") & 1) << 7) for i in range(128)]

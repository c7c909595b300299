#!/bin/sh
# Print the SHA-256 of ggml's IQ2/IQ1 lattice tables (iq2xs_init_impl's kmap
# as int32 LE, then its neighbour lists as uint16 LE) for IQ2_XXS, IQ2_XS,
# IQ1_S/IQ1_M and IQ2_S: the values TestIQ2LatticeTables
# (quantize/ggml_iq2_internal_test.go) compares quantbridge's tables with.
# The program includes ggml-quants.c to reach its static tables.
# Usage: scripts/iq2-lattice-hashes.sh [LLAMA_CPP_DIR] (default ~/llama.cpp, 34af94cd)
set -eu
LLAMA=${1:-$HOME/llama.cpp}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cat > "$TMP/dump.c" <<'C'
#include "ggml-quants.c"
int main(void) {
    enum ggml_type types[4] = {GGML_TYPE_IQ2_XXS, GGML_TYPE_IQ2_XS, GGML_TYPE_IQ1_S, GGML_TYPE_IQ2_S};
    for (int t = 0; t < 4; ++t) {
        iq2xs_init_impl(types[t]);
        const int g = iq2_data_index(types[t]);
        const int * map = iq2_data[g].map;
        int64_t total = 0;
        for (int i = 0; i < 43692; ++i) {
            if (map[i] < 0) total += 1 + (iq2_data[g].neighbours - map[i] - 1)[0];
        }
        fwrite(map, sizeof(int), 43692, stdout);
        fwrite(&total, sizeof(total), 1, stdout);
        fwrite(iq2_data[g].neighbours, sizeof(uint16_t), total, stdout);
    }
    return 0;
}
C
gcc -O2 -o "$TMP/dump" "$TMP/dump.c" -I "$LLAMA/ggml/include" -I "$LLAMA/ggml/src" -L "$LLAMA/build/bin" -lggml-base -lm
LD_LIBRARY_PATH="$LLAMA/build/bin" "$TMP/dump" > "$TMP/out.bin"
python3 - "$TMP/out.bin" <<'PY'
import hashlib, struct, sys
b = open(sys.argv[1], 'rb').read()
off = 0
for name in ['IQ2_XXS', 'IQ2_XS', 'IQ1_S/IQ1_M', 'IQ2_S']:
    m = b[off:off + 43692 * 4]; off += 43692 * 4
    total, = struct.unpack_from('<q', b, off); off += 8
    nb = b[off:off + 2 * total]; off += 2 * total
    print(name, hashlib.sha256(m + nb).hexdigest())
PY

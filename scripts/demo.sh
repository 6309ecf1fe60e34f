#!/usr/bin/env bash
# The main job on the bundled default model: compile -> prove -> verify.
set -euo pipefail
cd "$(dirname "$0")/.."
ZKML=.venv/bin/zkml
OUT=${ZKML_DEMO_OUT:-.zkml/demo}
mkdir -p "$OUT"

echo "== 1. compile the digits MLP (calibrated, cached in .zkml/)"
$ZKML compile circuits/digits_mlp.toml
echo
echo "== 2. prove one held-out test digit"
$ZKML prove circuits/digits_mlp.toml --input models/digits_input.json -o "$OUT/proof.json"
echo
echo "== 3. verify the proof bundle (SNARK + digests)"
$ZKML verify "$OUT/proof.json"
echo
echo "== 4. a tampered bundle is refused"
python3 - "$OUT/proof.json" "$OUT/tampered.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["outputs"]["values"][0][0] += 1.0
json.dump(d, open(sys.argv[2], "w"))
PY
if $ZKML verify "$OUT/tampered.json"; then echo "tampered bundle was accepted!" >&2; exit 1; else echo "(refused, as it must be)"; fi
echo
echo "demo done: bundle at $OUT/proof.json"

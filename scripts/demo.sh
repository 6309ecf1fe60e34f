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
echo "== 3. verify the proof bundle: every claim bound or not, and by what"
$ZKML verify "$OUT/proof.json"
echo
echo "== 3b. an auditor holding only the ONNX: does the proof's verifying key belong to it?"
$ZKML reproduce models/digits_mlp.onnx "$OUT/proof.json"
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
echo "== 5. deploy the verifier on the embedded chain (anvil on 127.0.0.1) and register the model"
$ZKML deploy circuits/digits_mlp.toml
echo
echo "== 6. verify the proof on chain through the registry, and record it (tx hash goes into the bundle)"
$ZKML verify "$OUT/proof.json" --onchain --record
echo
echo "== 7. the model's on-chain record and audit trail"
$ZKML registry show digits_mlp
$ZKML chain down >/dev/null
echo
echo "demo done: bundle at $OUT/proof.json (chain state kept in .zkml/; \`zkml chain up\` resumes it)"

#!/usr/bin/env bash
# End-to-end audit of the bundled digits MLP on its committed test set:
# commit -> challenge (auditor's VRF) -> respond (owner proves the sampled rows) -> check,
# first locally, then on the embedded chain (registry + VRFVerifier) with a nonce committed
# before the block whose hash is mixed in (commit-reveal), then a cheat that is caught.
#   bash scripts/audit_demo.sh     (AUDIT_K=16 proves more rows, AUDIT_MIN_ACCURACY=0.9 raises the bar;
#                                   ZKML_STORE / ZKML_DEMO_OUT move the files)
set -euo pipefail
cd "$(dirname "$0")/.."
ZKML=.venv/bin/zkml
PY=.venv/bin/python
export ZKML_STORE=${ZKML_STORE:-.zkml}
OUT=${ZKML_DEMO_OUT:-$ZKML_STORE/audit-demo}
K=${AUDIT_K:-8}
MIN_ACC=${AUDIT_MIN_ACCURACY:-0.6}
MODEL=digits_mlp_audited
mkdir -p "$OUT"
now() { date +%s.%N; }
took() { $PY -c "import sys, time; print(f'{time.time() - float(sys.argv[1]):.1f}s')" "$1"; }
# Progress lines ("  .. ") stay out of the demo's output; errors still show.
quiet() { "$@" 2> >(grep -v '^  \.\. ' >&2); }

echo "== 1. compile the digits MLP (cached) and commit the test set (Merkle root over rows + labels)"
quiet $ZKML compile circuits/digits_mlp.toml >/dev/null
$ZKML data commit models/digits_test.npz -o "$OUT/digits_test.commitment.json"
ROOT=$($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['root'])" "$OUT/digits_test.commitment.json")
[ -f "$OUT/auditor.key" ] || $ZKML vrf keygen --suite secp256k1 --out "$OUT/auditor.key"
echo

echo "== 2. local audit (the auditor names the block hash: the sample rests on the auditor, and zkml says so)"
BLOCK_HASH=0x$($PY -c "import secrets; print(secrets.token_hex(32))")
t=$(now)
quiet $ZKML audit challenge --model "$MODEL" --commitment "$OUT/digits_test.commitment.json" --k "$K" \
  --vrf-key "$OUT/auditor.key" --circuit circuits/digits_mlp.toml --block-hash "$BLOCK_HASH" -o "$OUT/local.challenge.json"
quiet $ZKML audit respond "$OUT/local.challenge.json" --data models/digits_test.npz -o "$OUT/local.response.json"
quiet $ZKML audit check "$OUT/local.response.json" --challenge "$OUT/local.challenge.json" --min-accuracy "$MIN_ACC"
echo "local audit of $K rows: $(took "$t")"
echo

echo "== 3. on chain: register the model with its dataset root (embedded anvil), then audit through the registry"
quiet $ZKML deploy circuits/digits_mlp.toml --model-id "$MODEL" --dataset-root "$ROOT"
# A dev chain makes no blocks without transactions: mine_block makes one on demand.
mine_block() { $PY -c "import os; from zkml.evm.anvil import embedded_rpc_url, rpc_request; rpc_request(embedded_rpc_url(os.environ['ZKML_STORE']), 'evm_mine')"; }
t=$(now)
# Commit: the auditor publishes keccak(nonce, model, dataset, k, key, target block) before that block exists
quiet $ZKML audit commit --model "$MODEL" --commitment "$OUT/digits_test.commitment.json" --k "$K" \
  --vrf-key "$OUT/auditor.key" -o "$OUT/chain.commit.json"
mine_block
# Reveal: alpha mixes the committed nonce with the target block's hash, read from the chain
quiet $ZKML audit challenge --onchain --from-commit "$OUT/chain.commit.json" --vrf-key "$OUT/auditor.key" \
  -o "$OUT/chain.challenge.json"
quiet $ZKML audit respond "$OUT/chain.challenge.json" --data models/digits_test.npz -o "$OUT/chain.response.json"
quiet $ZKML audit check "$OUT/chain.response.json" --min-accuracy "$MIN_ACC" --onchain --vrf-key "$OUT/auditor.key"
echo "on-chain audit of $K rows: $(took "$t")"
echo

echo "== 4. a cheating owner who changes a committed label is caught"
$PY - "$OUT/chain.response.json" "$OUT/cheat.response.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["rows"][0]["label"] = (d["rows"][0]["label"] + 1) % 10
json.dump(d, open(sys.argv[2], "w"))
PY
if $ZKML audit check "$OUT/cheat.response.json" --challenge "$OUT/chain.challenge.json" 2>&1 | tail -1; then
  echo "the cheat was accepted!" >&2; exit 1
else
  echo "(refused, as it must be)"
fi
echo

echo "== 5. the model's on-chain audit trail"
$ZKML registry show "$MODEL" | sed -n '/history/,$p' | head -n 5
echo "    …"
$ZKML chain down >/dev/null
echo
echo "audit demo done: reports in $OUT/*.report.{json,md}"

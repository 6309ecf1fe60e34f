"""``zkml audit``: challenge a registered model on VRF-sampled committed rows, answer, and check the answer.

    zkml audit commit --model digits_mlp --commitment test.commitment.json --k 8 --vrf-key auditor.key -o commit.json
    zkml audit challenge --onchain --from-commit commit.json --vrf-key auditor.key   # once the target block exists
    zkml audit respond challenge.json --data models/digits_test.npz            # the model owner
    zkml audit check response.json --min-accuracy 0.75 --onchain               # the auditor

An on-chain challenge is commit-reveal (``zkml.audit.onchain``): the nonce is
committed against a future block before its hash exists, so the auditor cannot
grind the sample. A local challenge (``--block-hash``) commits nothing, and
says so loudly: its sample rests on the auditor alone.

Exit codes: 0 success / audit passed; 1 audit failed (the report says which
check); 2 bad input (one line on stderr). The auditor's VRF secret key comes
from ``--vrf-key FILE`` (``zkml vrf keygen --suite secp256k1 --out FILE``) or
``$ZKML_VRF_SK`` (read by ``zkml.keys``) and is never printed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from zkml_cli.common import refuse, JsonOpt, KeyFileOpt, RayOpt, RpcOpt, ServerOpt, StoreOpt, WorkersOpt, emit, progress, run

app = typer.Typer(
    name="audit",
    help="Audit protocol: VRF-sampled committed rows, proven by the model owner, checked by the auditor.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

OnchainOpt = Annotated[bool, typer.Option("--onchain", help="Use the chain: registry record, block hash, VRFVerifier.")]
RegistryOpt = Annotated[
    str | None,
    typer.Option("--registry", envvar="ZKML_REGISTRY", help="ModelRegistry address (default: the one `zkml deploy` recorded)."),
]
VrfVerifierOpt = Annotated[
    str | None,
    typer.Option("--vrf-verifier", envvar="ZKML_VRF_VERIFIER", help="VRFVerifier address (default: the store's, deployed once)."),
]
LedgerOpt = Annotated[
    Path | None, typer.Option("--ledger", help="The auditor's ledger of issued challenges (default: <store>/audit/ledger.json).")
]
CircuitOpt = Annotated[
    str | None, typer.Option("--circuit", help="The audited circuit: a circuit id or folder, a circuits/*.toml recipe or an .onnx.")
]


def _store(store: Path | None) -> Any:
    from zkml.store import Store

    return Store(store)


def _ledger(ledger: Path | None, st: Any) -> Any:
    from zkml.audit import Ledger, default_ledger_path

    return Ledger(ledger if ledger is not None else default_ledger_path(st.root))


def _hex32(value: str, flag: str) -> bytes:
    from zkml.commitments import to_bytes32

    return to_bytes32(value, flag)


def _sha256(value: str, flag: str) -> str:
    from zkml.errors import InputError

    text = value.strip().lower().removeprefix("0x")
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise InputError(f"{flag} must be a sha256 digest (64 hex digits)")
    return text


def _dataset(dataset_root: str | None, commitment: Path | None, rows: int | None) -> tuple[bytes | None, int]:
    """The dataset root and row count N from the flags (a commitment file gives both)."""
    from zkml.commitments import hex32, read_commitment
    from zkml.errors import InputError

    root = _hex32(dataset_root, "--dataset-root") if dataset_root is not None else None
    n_rows = rows
    if commitment is not None:
        c = read_commitment(commitment).commitment
        if root is not None and root != c.root:
            raise InputError(f"--dataset-root {hex32(root)} is not the root of {commitment} ({c.root_hex})")
        if rows is not None and rows != c.n_rows:
            raise InputError(f"--rows {rows} but {commitment} has {c.n_rows} rows")
        if not c.has_labels:
            raise InputError(f"{commitment}: the dataset has no labels; an audit needs committed labels")
        root, n_rows = c.root, c.n_rows
    if n_rows is None:
        raise InputError("the row count N is unknown: pass --commitment FILE (from `zkml data commit`) or --rows N")
    return root, n_rows


def _warn_local(notes: Any) -> None:
    """Say loudly, on stderr, that a local audit's sample rests on the auditor."""
    from zkml.audit import LOCAL_BLOCK_NOTE

    if LOCAL_BLOCK_NOTE in notes:
        print(f"WARNING: {LOCAL_BLOCK_NOTE}", file=sys.stderr, flush=True)


@app.command("commit")
def commit_cmd(
    model: Annotated[str, typer.Option("--model", "-m", help="The registered model: 0xOWNER/name, a name of your own account, or the 0x model id.")],
    k: Annotated[int, typer.Option("--k", "-k", help="Rows the owner must prove.")],
    dataset_root: Annotated[str | None, typer.Option("--dataset-root", help="Committed Merkle root (0x…); must be the registered one.")] = None,
    commitment: Annotated[Path | None, typer.Option("--commitment", help="Commitment file from `zkml data commit` (gives the root and the row count N).")] = None,
    rows: Annotated[int | None, typer.Option("--rows", help="Row count N under the root (when no --commitment is given).")] = None,
    vrf_key: Annotated[Path | None, typer.Option("--vrf-key", help="The auditor's VRF key file (else $ZKML_VRF_SK).")] = None,
    suite: Annotated[str | None, typer.Option("--suite", help="ECVRF suite (default: the key file's, else secp256k1, the one verified on chain).")] = None,
    circuit: CircuitOpt = None,
    blocks_ahead: Annotated[int, typer.Option("--blocks-ahead", help="The target block: this many blocks after the one the commitment lands in.")] = 1,
    registry: RegistryOpt = None,
    vrf_verifier: VrfVerifierOpt = None,
    key_file: KeyFileOpt = None,
    rpc_url: RpcOpt = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Commit file to write (mode 0600: it holds the nonce until the reveal).")] = Path("commit.json"),
    pending: Annotated[bool, typer.Option("--pending", help="Audit the model's PENDING version through its validation gate (openAudit); k and N are the gate's.")] = False,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Step 1 of an on-chain challenge: publish a commitment to a fresh nonce against a future block."""
    from zkml import audit, keys
    from zkml.commitments import hex32

    report = progress(json_out)

    def go() -> Any:
        st = _store(store)
        root, n_rows = _dataset(dataset_root, commitment, rows)
        key = keys.load_vrf_key(vrf_key, suite)
        circ = None
        if circuit is not None:
            from zkml.targets import resolve_circuit

            circ, _ = resolve_circuit(circuit, st, progress=report)
        oc = audit.open_onchain(st, rpc_url=rpc_url, key_file=key_file, registry=registry,
                                vrf_verifier=vrf_verifier, progress=report)
        if pending:
            return _open_gate_audit(oc, st, key, model, k, n_rows, blocks_ahead, out, report)
        c = audit.commit_onchain_challenge(oc, key=key, model_id=oc.registry.model_id(model), k=k, n_rows=n_rows,
                                           dataset_root=root, circuit=circ, blocks_ahead=blocks_ahead, progress=report)
        c.save(out)
        return c

    c = run(go)
    pub = c.commit
    data = {k_: v for k_, v in c.to_json().items() if k_ != "nonce"}
    emit(json_out, {**data, "file": str(out)}, "\n".join([
        f"nonce commitment {hex32(pub.commitment)} -> {out}",
        f"  model     {hex32(c.model_id)} (version {c.model_version}), N = {c.n_rows}, k = {c.k}",
        f"  published tx {pub.tx_hash} in block {pub.block} (chain {c.chain_id})",
        f"  reveal    once block {pub.target_block} exists: zkml audit challenge --onchain --from-commit {out}",
    ]))


@app.command("challenge")
def challenge_cmd(
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model id: the registry name (e.g. digits_mlp) or a 0x bytes32 id (local audit).")] = None,
    k: Annotated[int | None, typer.Option("--k", "-k", help="Rows the owner must prove (local audit).")] = None,
    from_commit: Annotated[Path | None, typer.Option("--from-commit", help="With --onchain: the commit file of `zkml audit commit` (model, dataset, k, nonce, target block).")] = None,
    dataset_root: Annotated[str | None, typer.Option("--dataset-root", help="Committed Merkle root (0x…); on chain it must be the registered one.")] = None,
    commitment: Annotated[Path | None, typer.Option("--commitment", help="Commitment file from `zkml data commit` (gives the root and the row count N).")] = None,
    rows: Annotated[int | None, typer.Option("--rows", help="Row count N under the root (when no --commitment is given).")] = None,
    vrf_key: Annotated[Path | None, typer.Option("--vrf-key", help="The auditor's VRF key file (else $ZKML_VRF_SK).")] = None,
    suite: Annotated[str | None, typer.Option("--suite", help="ECVRF suite (default: the key file's, else secp256k1, the one verified on chain).")] = None,
    circuit: CircuitOpt = None,
    model_digest: Annotated[str | None, typer.Option("--model-digest", help="sha256 of the audited ONNX (local audit).")] = None,
    block_hash: Annotated[str | None, typer.Option("--block-hash", help="Local audit: a block hash you name (unpredictability then rests on you).")] = None,
    block_number: Annotated[int | None, typer.Option("--block-number", help="Local audit: that block's number.")] = None,
    chain_id: Annotated[int, typer.Option("--chain-id", help="Local audit: the chain of --block-hash (0: none).")] = 0,
    nonce: Annotated[str | None, typer.Option("--nonce", help="Local audit: 32-byte hex nonce (default: fresh random).")] = None,
    onchain: OnchainOpt = False,
    post: Annotated[bool, typer.Option("--post/--no-post", help="With --onchain: post the challenge as a VRFVerifier.verify transaction.")] = True,
    wait: Annotated[float, typer.Option("--wait", help="With --onchain: seconds to wait for the committed target block.")] = 0.0,
    registry: RegistryOpt = None,
    vrf_verifier: VrfVerifierOpt = None,
    key_file: KeyFileOpt = None,
    rpc_url: RpcOpt = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Challenge file to write.")] = Path("challenge.json"),
    ledger: LedgerOpt = None,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Draw k rows of the committed dataset with the auditor's VRF and write the challenge file.

    On chain this reveals a nonce committed with `zkml audit commit`; locally the block hash is yours.
    """
    from zkml import audit, keys
    from zkml.commitments import hex32
    from zkml.errors import ConfigError, InputError

    report = progress(json_out)

    def go() -> tuple[Any, list[str]]:
        st = _store(store)
        if onchain:
            # Reveal: everything but the key comes from the commit file and the chain
            if from_commit is None:
                raise InputError("an on-chain challenge reveals a nonce committed before its block: run `zkml audit "
                                 "commit … -o commit.json` first, then `zkml audit challenge --onchain --from-commit "
                                 "commit.json`")
            for flag, value in (("--block-hash", block_hash), ("--block-number", block_number), ("--nonce", nonce),
                                ("--model", model), ("--k", k), ("--dataset-root", dataset_root),
                                ("--commitment", commitment), ("--rows", rows), ("--circuit", circuit),
                                ("--model-digest", model_digest)):
                if value is not None:
                    raise ConfigError(f"{flag} is fixed by the commit file with --onchain --from-commit")
            committed = audit.AuditCommit.load(from_commit)
            key = keys.load_vrf_key(vrf_key, suite or committed.suite)
            assert key is not None
            oc = audit.open_onchain(st, rpc_url=rpc_url, key_file=key_file, registry=registry or committed.registry,
                                    vrf_verifier=vrf_verifier, progress=report)
            if committed.gate:  # an audit of the pending version: the gate checks the VRF at submission
                from zkml.audit import gate as gate_audit

                ch = gate_audit.reveal_gate_audit(oc, committed, key=key, wait=wait)
            else:
                ch, _ = audit.issue_onchain_challenge(oc, committed, key=key, post=post, wait=wait, progress=report)
        else:
            if from_commit is not None:
                raise ConfigError("--from-commit reveals an on-chain commitment: add --onchain")
            if model is None or k is None:
                raise InputError("a local challenge needs --model and --k")
            root, n_rows = _dataset(dataset_root, commitment, rows)
            key = keys.load_vrf_key(vrf_key, suite)
            assert key is not None
            circ = None
            if circuit is not None:
                from zkml.targets import resolve_circuit

                circ, _ = resolve_circuit(circuit, st, progress=report)
            if root is None:
                raise InputError("no dataset root: pass --dataset-root or --commitment (or --onchain to read the registry)")
            if block_hash is None:
                raise InputError("no block hash: pass --onchain --from-commit (commit-reveal on the registry's chain) "
                                 "or --block-hash for a local audit")
            onnx_sha = _sha256(model_digest, "--model-digest") if model_digest is not None else None
            vk_sha = None
            if circ is not None:
                if onnx_sha is not None and onnx_sha != circ.model_sha256:
                    raise ConfigError(f"--model-digest is not the model of --circuit {circuit} ({circ.model_sha256[:16]}…)")
                onnx_sha, vk_sha = circ.model_sha256, circ.files["vk.key"]
            if onnx_sha is None:
                raise InputError("which model is audited? pass --circuit (the audited circuit) or --model-digest (its ONNX sha256)")
            block = audit.BlockRef(chain_id, block_number or 0, _hex32(block_hash, "--block-hash"), "auditor")
            ch = audit.issue_challenge(
                key=key, model_id=audit.parse_model_id(model), dataset_root=root, n_rows=n_rows, k=k,
                model=audit.ExpectedModel(onnx_sha, vk_sha, circ.circuit_id if circ is not None else None),
                block=block, nonce=_hex32(nonce, "--nonce") if nonce is not None else None,
            )
        ch.save(out)
        superseded = _ledger(ledger, st).record_issued(ch, str(out))
        return ch, superseded

    ch, superseded = run(go)
    f = ch.fields
    data = {**ch.to_json(), "file": str(out), "superseded": superseded}
    lines = [
        f"challenge {ch.digest[:16]}… -> {out}",
        f"  model     {hex32(f.model_id)} (version {f.model_version})",
        f"  dataset   root {hex32(f.dataset_root)}, N = {f.n_rows}",
        f"  block     {f.block_number} {hex32(f.block_hash)} on chain {f.chain_id} ({ch.block_source})",
        f"  VRF       {ch.suite} pk {ch.pk.hex()}, beta {ch.beta.hex()}",
        f"  sample    k = {ch.k}: rows {list(ch.indices)}",
    ]
    if ch.posted:
        lines.append(f"  posted    tx {ch.posted['tx_hash']} (VRFVerifier {ch.posted['vrf_verifier']}, gas {ch.posted['gas_used']:,})")
    if ch.commit:
        lines.append(f"  commit    {hex32(ch.commit.commitment)} published in block {ch.commit.block} "
                     f"(tx {ch.commit.tx_hash}), opened by the nonce")
    if superseded:
        lines.append(f"  supersedes {len(superseded)} earlier challenge(s) of this model and dataset")
    lines += [f"NOTE: {n}" for n in ch.notes]
    _warn_local(ch.notes)
    emit(json_out, data, "\n".join(lines))


@app.command("respond")
def respond_cmd(
    challenge: Annotated[Path, typer.Argument(help="The challenge file the auditor sent.")],
    data: Annotated[Path, typer.Option("--data", "-d", help="The committed dataset (.npz or .json with rows and labels).")],
    circuit: CircuitOpt = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Response file to write.")] = Path("response.json"),
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds before a proof is abandoned.")] = 600.0,
    workers: WorkersOpt = None,
    ray: RayOpt = None,
    server: ServerOpt = None,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Prove the challenged rows (batched) with Merkle inclusion proofs and write the response file."""
    from zkml import audit

    report = progress(json_out)

    def go() -> Any:
        from zkml.audit.respond import challenged_circuit
        from zkml.scale.route import ProveRoute

        route = ProveRoute.from_flags(workers, ray, server)
        st = _store(store)
        ch = audit.Challenge.load(challenge)
        circ = challenged_circuit(ch, st, circuit, progress=report)
        r = audit.respond(ch, data, circ, timeout=timeout, route=route, progress=report)
        r.save(out)
        return r

    r = run(go)
    b = r.bundle
    data_out = {"response": str(out), "challenge_digest": r.challenge_digest, "rows": [x.index for x in r.rows],
                "circuit_id": b.circuit_id, "proofs": len(b.proofs), "batch_size": b.batch_size,
                "timings": dict(r.timings)}
    emit(json_out, data_out,
         f"proved rows {[x.index for x in r.rows]} in {len(b.proofs)} proof(s) (circuit {b.circuit_id}, batch "
         f"{b.batch_size}) -> {out}\n  prove {r.timings['prove_seconds']:.1f}s, "
         f"total {r.timings['total_seconds']:.1f}s; answers challenge {r.challenge_digest[:16]}…")


def _open_gate_audit(oc: Any, st: Any, key: Any, model: str, k: int, n_rows: int, blocks_ahead: int, out: Path,
                     report: Any) -> Any:
    """``zkml audit commit --pending``: open an audit of the pending version in the model's gate."""
    from zkml.audit import gate as gate_audit
    from zkml.errors import ConfigError
    from zkml.evm.registry.gate import store_gate

    mid = oc.registry.model_id(model)
    gate = store_gate(st, oc.chain, oc.registry, mid)
    if gate is None:
        raise ConfigError(f"model {model!r} has no validation gate: --pending audits go through one")
    cfg = gate.config(mid)
    if (k, n_rows) != (cfg.k, cfg.n_rows):
        raise ConfigError(f"the gate samples k = {cfg.k} of N = {cfg.n_rows} rows, not k = {k} of {n_rows}")
    c = gate_audit.open_gate_audit(oc, gate.with_chain(oc.chain), key=key, model_id=mid, blocks_ahead=blocks_ahead,
                                   progress=report)
    c.save(out)
    return c


def _pending_gate(oc: Any, st: Any, expected: Any) -> Any:
    """The model's gate when the challenge audits its pending version (else None)."""
    from zkml.evm.registry.gate import store_gate

    f = expected.fields
    info = oc.registry.model(f.model_id)
    if info.pending is None or info.pending.version != f.model_version or f.model_version == info.current_version:
        return None
    gate = store_gate(st, oc.chain, oc.registry, f.model_id)
    return None if gate is None else gate.with_chain(oc.chain)


@app.command("check")
def check_cmd(
    response: Annotated[Path, typer.Argument(help="The owner's response file.")],
    challenge: Annotated[Path | None, typer.Option("--challenge", help="The challenge file you issued (default: the open one in your ledger).")] = None,
    min_accuracy: Annotated[float, typer.Option("--min-accuracy", help="Fraction of sampled rows the proven outputs must classify correctly.")] = 0.75,
    circuit: Annotated[str | None, typer.Option("--circuit", help="The audited circuit's public artifacts: a folder (settings.json, vk.key, SRS) or a circuit id.")] = None,
    model_digest: Annotated[str | None, typer.Option("--model-digest", help="sha256 of the audited ONNX (must agree with the challenge).")] = None,
    onchain: OnchainOpt = False,
    record: Annotated[bool, typer.Option("--record/--no-record", help="With --onchain: record a passing audit's proofs (verifyAndRecord).")] = True,
    vrf_key: Annotated[Path | None, typer.Option("--vrf-key", help="With --onchain: the challenge's VRF key (else $ZKML_VRF_SK), to bind your account as its auditor in the registry if it is not yet.")] = None,
    registry: RegistryOpt = None,
    vrf_verifier: VrfVerifierOpt = None,
    key_file: KeyFileOpt = None,
    rpc_url: RpcOpt = None,
    report_path: Annotated[Path | None, typer.Option("--report", help="JSON report to write (a .md summary goes beside it; default RESPONSE.report.json).")] = None,
    ledger: LedgerOpt = None,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Check a response: VRF, sampled rows, inclusion, model, every SNARK, accuracy. Exit 0 pass, 1 fail."""
    from zkml import audit
    from zkml.commitments import hex32
    from zkml.errors import ConfigError
    from zkml.util import sha256_file

    report = progress(json_out)
    dest = report_path if report_path is not None else response.with_name(response.name.removesuffix(".json") + ".report.json")

    def go() -> Any:
        st = _store(store)
        resp = audit.Response.load(response)
        led = _ledger(ledger, st)
        replay_note = None
        # The challenge to judge against comes from the auditor's side only
        if challenge is not None:
            expected = audit.Challenge.load(challenge)
        else:
            expected, status = led.expected(resp.challenge_digest)
            if expected is None:
                f = resp.challenge.fields
                expected = led.latest(f.model_id, f.dataset_root)
                if expected is None:
                    raise ConfigError(f"no open challenge for model {hex32(f.model_id)} and root {hex32(f.dataset_root)} "
                                      f"in ledger {led.path}: pass --challenge FILE (the one you issued)")
                replay_note = f"the answered challenge was {status}"
        # The audited model: the challenge's pins, plus what the flags add
        pins = expected.model
        onnx_sha = pins.onnx_sha256
        if model_digest is not None:
            given = _sha256(model_digest, "--model-digest")
            if onnx_sha is not None and given != onnx_sha:
                raise ConfigError(f"--model-digest {given[:16]}… contradicts the challenge's model {onnx_sha[:16]}…")
            onnx_sha = given
        artifacts = None
        if circuit is not None:
            from zkml.circuit import named_artifacts

            artifacts = named_artifacts(st, circuit=circuit)
            vk_sha = sha256_file(artifacts.vk)
            if pins.vk_sha256 is not None and vk_sha != pins.vk_sha256:
                raise ConfigError(f"--circuit {circuit} has vk {vk_sha[:16]}…, the challenge audits vk {pins.vk_sha256[:16]}…")
        model = audit.ExpectedModel(onnx_sha, pins.vk_sha256, pins.circuit_id)
        oc = auditor = None
        if onchain:
            from zkml import keys

            oc = audit.open_onchain(st, rpc_url=rpc_url, key_file=key_file, registry=registry,
                                    vrf_verifier=vrf_verifier, progress=report)
            auditor = keys.load_vrf_key(vrf_key, expected.suite, required=False) if record else None
        gate = _pending_gate(oc, st, expected) if oc is not None else None
        rep = audit.check_response(resp, expected, store=st, min_accuracy=min_accuracy, artifacts=artifacts,
                                   expected_model=model, replay_note=replay_note,
                                   onchain=None if gate is not None else oc, record=record,
                                   auditor_key=auditor, progress=report)
        if gate is not None:  # the pending version: the gate judges the rows and proofs on chain
            from zkml.audit import gate as gate_audit
            from zkml.audit.check import AuditCheck

            assert oc is not None
            result = gate_audit.submit_gate_audit(oc, gate, expected, resp, record=record, progress=report)
            rep.onchain["gate"] = result.to_json()
            rep.checks.append(AuditCheck("gate_onchain", result.passed,
                                         f"ValidationGate {gate.address}: {result.correct}/{result.sampled} proven "
                                         f"predictions correct on chain, {'pass' if result.passed else 'FAIL'}"
                                         + (f", SLA breach paid {result.payout} wei" if result.breach else "")
                                         + f" (tx {result.tx_hash[:12]}…, gas {result.gas_used:,})"))
        json_path, md_path = audit.write_report(rep, dest)
        led.record_check(expected.digest, rep.passed, str(json_path))
        return rep, md_path

    rep, md_path = run(go)
    _warn_local(rep.notes)
    emit(json_out, {**rep.as_dict(), "report": str(dest), "summary": str(md_path)},
         rep.summary() + f"\nreport: {dest}, {md_path}")
    if not rep.passed:
        from zkml.errors import first_failure

        raise refuse(first_failure(list(rep.failures()), "audit failed"))

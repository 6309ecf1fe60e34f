"""``zkml data``: commit to a dataset (Merkle root) and prove or check that a row belongs to it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from zkml.errors import InputError
from zkml_cli.common import JsonOpt, KeyFileOpt, RpcOpt, StoreOpt, emit, progress, run


def _commit() -> Any:
    """zkml.commitments.dataset, imported on first use (eth_utils costs ~0.2 s at startup)."""
    import zkml.commitments.dataset

    return zkml.commitments.dataset

app = typer.Typer(
    name="data",
    help="Dataset commitments: Merkle root over the rows, per-row inclusion proofs (OpenZeppelin MerkleProof compatible).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

IndexOpt = Annotated[int, typer.Option("--index", "-i", help="0-based row index.")]


def default_commitment_path(data: Path) -> Path:
    """``DIR/NAME.commitment.json`` beside the dataset ``DIR/NAME.ext``."""
    return data.with_name(f"{data.stem}.commitment.json")


def parse_proof(text: str) -> list[bytes]:
    """Parse ``--proof``: comma-separated hex bytes32, or an empty string for an empty proof.

    Raises :class:`InputError` for an empty element or a value that is not a bytes32.
    """
    if not text.strip():
        return []
    parts = [p.strip() for p in text.split(",")]
    if any(not p for p in parts):
        raise InputError("--proof has an empty element (expected comma-separated 0x… bytes32 values)")
    return [_commit().to_bytes32(p, f"--proof[{i}]") for i, p in enumerate(parts)]


@app.command("commit")
def commit_cmd(
    data: Annotated[Path, typer.Argument(help="Dataset: .json (rows, or x/y, inputs/labels, input_data) or .npz (x/X/inputs, y/labels).")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Commitment file to write (default: DATA's name + .commitment.json).")
    ] = None,
    register: Annotated[
        str | None,
        typer.Option("--register", help="Record the root as this registered model's dataset root (model owner's key)."),
    ] = None,
    rpc_url: RpcOpt = None,
    key_file: KeyFileOpt = None,
    store: StoreOpt = None,
    json_mode: JsonOpt = False,
) -> None:
    """Compute the dataset's Merkle root and write the commitment file (root, leaves, a proof per row)."""

    def go() -> None:
        committed = _commit().build_commitment(data)
        dest = output if output is not None else default_commitment_path(data)
        _commit().write_commitment(dest, committed)
        c = committed.commitment
        summary: dict[str, Any] = {
            "root": c.root_hex,
            "n_rows": c.n_rows,
            "row_shape": list(c.row_shape),
            "has_labels": c.has_labels,
            "leaf_encoding_version": c.leaf_encoding_version,
            "data_sha256": c.file_sha256,
            "commitment_file": str(dest),
        }
        human = (
            f"root        {c.root_hex}\n"
            f"rows        {c.n_rows} (row shape {list(c.row_shape)}, labels: {'yes' if c.has_labels else 'no'})\n"
            f"commitment  {dest}"
        )
        if register is not None:
            from zkml.evm.deploy import open_chain, record_dataset_root
            from zkml.store import Store

            st = Store(store)
            chain = open_chain(st, rpc_url, key_file, progress=progress(json_mode))
            summary["registry"] = reg = record_dataset_root(st, chain, register, c.root, progress=progress(json_mode))
            human += (
                f"\nregistry    {reg['registry']} on chain {reg['chain_id']}: dataset root of model '{register}' "
                f"version {reg['version']} " + (f"recorded (tx {reg['tx']})" if reg["tx"] else "already recorded")
            )
        emit(json_mode, summary, human)

    run(go)


@app.command("prove-row")
def prove_row_cmd(
    commitment: Annotated[Path, typer.Argument(help="Commitment file written by `zkml data commit`.")],
    index: IndexOpt,
    json_mode: JsonOpt = False,
) -> None:
    """Print a row's leaf and its inclusion proof (hex bytes32, root-ward order)."""

    def go() -> None:
        committed = _commit().read_commitment(commitment)
        leaf = committed.leaf(index)
        proof = [_commit().hex32(p) for p in committed.proof(index)]
        summary = {"index": index, "root": committed.commitment.root_hex, "leaf": _commit().hex32(leaf), "proof": proof}
        lines = [f"row    {index}", f"root   {summary['root']}", f"leaf   {summary['leaf']}", f"proof  {','.join(proof)}"]
        emit(json_mode, summary, "\n".join(lines))

    run(go)


@app.command("verify-row")
def verify_row_cmd(
    data: Annotated[Path, typer.Option("--data", "-d", help="Dataset file holding the row.")],
    index: IndexOpt,
    commitment: Annotated[
        Path | None, typer.Argument(help="Commitment file: supplies the root and proof unless --root/--proof are given.")
    ] = None,
    root: Annotated[str | None, typer.Option("--root", help="Trusted Merkle root (0x… bytes32), e.g. from the registry.")] = None,
    proof: Annotated[
        str | None, typer.Option("--proof", help="Comma-separated 0x… bytes32 siblings; \"\" for a one-row dataset.")
    ] = None,
    json_mode: JsonOpt = False,
) -> None:
    """Check that row INDEX of DATA is in the committed dataset. Exit 0 valid, 1 invalid, 2 bad input."""

    def go() -> None:
        # Sources of root and proof: flags first, then the commitment file
        committed = _commit().read_commitment(commitment) if commitment is not None else None
        if root is not None:
            trusted_root = _commit().to_bytes32(root, "--root")
        elif committed is not None:
            trusted_root = committed.commitment.root
        else:
            raise InputError("no root: pass --root or a commitment file")
        if proof is not None:
            siblings = parse_proof(proof)
        elif committed is not None:
            siblings = committed.proof(index)
        else:
            raise InputError("no proof: pass --proof or a commitment file")
        # The row's leaf, recomputed from the data file
        leaf = _commit().dataset_row_leaf(_commit().load_dataset(data), index)
        valid = _commit().verify_inclusion(trusted_root, leaf, siblings)
        summary = {
            "valid": valid,
            "index": index,
            "root": _commit().hex32(trusted_root),
            "leaf": _commit().hex32(leaf),
            "proof": [_commit().hex32(p) for p in siblings],
        }
        verdict = "valid" if valid else "invalid"
        relation = "is" if valid else "is NOT"
        emit(json_mode, summary, f"{verdict}: row {index} of {data} {relation} in the dataset with root {_commit().hex32(trusted_root)}")
        if not valid:
            raise typer.Exit(1)

    run(go)

"""Merkle tree primitives: bytes32 helpers and OpenZeppelin's sorted-pair keccak256 tree.

The dataset commitment (:mod:`zkml.commitments.dataset`, which re-exports every name here)
puts one leaf per dataset row into this tree; the leaf encoding is specified
there. This module only builds the tree over 32-byte leaves and serves and
checks inclusion proofs.

Tree
====
The tree is OpenZeppelin's ``StandardMerkleTree`` layout with leaves kept in row
order (``StandardMerkleTree.of(values, ["uint256", "bytes", "bytes"],
{sortLeaves: false})`` in ``@openzeppelin/merkle-tree`` builds the same root):
for ``n`` leaves an array ``tree`` of ``2n - 1`` nodes, leaf ``i`` stored at
``tree[2n - 2 - i]``, each inner node ``tree[k] = H(tree[2k + 1], tree[2k + 2])``
for ``k = n - 2 .. 0``, root ``tree[0]``; ``H(a, b) = keccak256(min(a, b) ‖
max(a, b))`` (sorted pair, OpenZeppelin's ``Hashes.commutativeKeccak256``).
An odd count needs no padding: the array layout is a complete binary tree.
The proof of leaf ``i`` is the list of siblings from the leaf up to (not
including) the root, so OpenZeppelin 5.x ``MerkleProof.verify(proof, root,
leaf)`` accepts it unchanged. A one-row dataset has ``root = leaf_0`` and an
empty proof. An empty dataset has no root and is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from eth_utils import keccak

from zkml.errors import InputError


class RowIndexError(InputError):
    """A row index is outside the dataset."""

    def __init__(self, index: int, n_rows: int):
        super().__init__(f"row index {index} is out of range (the dataset has {n_rows} rows: 0..{n_rows - 1})")
        self.index: Final[int] = index
        self.n_rows: Final[int] = n_rows


# ---------------------------------------------------------------------------
# bytes32 helpers
# ---------------------------------------------------------------------------


def to_bytes32(value: bytes | str, what: str = "value") -> bytes:
    """Parse a bytes32 given as 32 raw bytes or as 64 hex digits (``0x`` optional).

    Raises :class:`InputError` for anything else.
    """
    if isinstance(value, bytes):
        raw = value
    elif isinstance(value, str):
        text = value[2:] if value[:2] in ("0x", "0X") else value
        if len(text) != 64:
            raise InputError(f"{what} must be 32 bytes as 64 hex digits, got {len(text)} characters")
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise InputError(f"{what} is not hexadecimal: {value!r}") from None
    else:
        raise InputError(f"{what} must be bytes or a hex string, got {type(value).__name__}")
    if len(raw) != 32:
        raise InputError(f"{what} must be 32 bytes, got {len(raw)}")
    return raw


def hex32(value: bytes) -> str:
    """``0x``-prefixed lowercase hex of a bytes32 (the form Solidity tooling takes)."""
    return "0x" + value.hex()


def hash_pair(a: bytes, b: bytes) -> bytes:
    """OpenZeppelin's ``Hashes.commutativeKeccak256``: keccak256 of the sorted pair."""
    return keccak(a + b) if a < b else keccak(b + a)


# ---------------------------------------------------------------------------
# Merkle tree
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MerkleTree:
    """A sorted-pair keccak256 Merkle tree in OpenZeppelin's array layout (see module docstring)."""

    nodes: tuple[bytes, ...]
    """All ``2n - 1`` nodes; ``nodes[0]`` is the root, leaf ``i`` is ``nodes[2n - 2 - i]``."""

    @classmethod
    def build(cls, leaves: Sequence[bytes]) -> MerkleTree:
        """Build the tree over ``leaves`` (32-byte hashes, in order).

        Raises :class:`InputError` for an empty list or a leaf that is not 32 bytes.
        """
        # Inputs validation
        n = len(leaves)
        if n == 0:
            raise InputError("cannot build a Merkle tree over zero leaves")
        for i, leaf in enumerate(leaves):
            if not isinstance(leaf, bytes) or len(leaf) != 32:
                raise InputError(f"leaf {i} is not 32 bytes")
        # Procedure
        nodes: list[bytes] = [b""] * (2 * n - 1)
        for i, leaf in enumerate(leaves):
            nodes[2 * n - 2 - i] = leaf
        for k in range(n - 2, -1, -1):
            nodes[k] = hash_pair(nodes[2 * k + 1], nodes[2 * k + 2])
        return cls(tuple(nodes))

    @property
    def n_leaves(self) -> int:
        """Number of leaves."""
        return (len(self.nodes) + 1) // 2

    @property
    def root(self) -> bytes:
        """The 32-byte root."""
        return self.nodes[0]

    def leaf(self, index: int) -> bytes:
        """Leaf ``index``; raises :class:`RowIndexError` when out of range."""
        return self.nodes[self._position(index)]

    def leaves(self) -> list[bytes]:
        """All leaves, in order."""
        return [self.nodes[len(self.nodes) - 1 - i] for i in range(self.n_leaves)]

    def proof(self, index: int) -> list[bytes]:
        """Sibling hashes from leaf ``index`` up to the root (OpenZeppelin ``MerkleProof`` order).

        Raises :class:`RowIndexError` when ``index`` is out of range.
        """
        k = self._position(index)
        path: list[bytes] = []
        while k > 0:
            path.append(self.nodes[k - 1 if k % 2 == 0 else k + 1])
            k = (k - 1) // 2
        return path

    def _position(self, index: int) -> int:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < self.n_leaves:
            raise RowIndexError(index, self.n_leaves)
        return len(self.nodes) - 1 - index


def process_proof(leaf: bytes | str, proof: Sequence[bytes | str]) -> bytes:
    """The root that ``proof`` leads to from ``leaf`` (OpenZeppelin ``MerkleProof.processProof``).

    Raises :class:`InputError` when the leaf or a proof element is not a bytes32.
    """
    computed = to_bytes32(leaf, "leaf")
    for i, sibling in enumerate(proof):
        computed = hash_pair(computed, to_bytes32(sibling, f"proof[{i}]"))
    return computed


def verify_inclusion(root: bytes | str, leaf: bytes | str, proof: Sequence[bytes | str]) -> bool:
    """True iff ``proof`` shows ``leaf`` is in the tree with ``root`` (OpenZeppelin ``MerkleProof.verify``).

    Malformed input (not bytes32) raises :class:`InputError`; a well-formed
    proof that does not lead to ``root`` returns False.
    """
    expected = to_bytes32(root, "root")
    return process_proof(leaf, proof) == expected

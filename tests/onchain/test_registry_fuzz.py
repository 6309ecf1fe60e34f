"""Stateful property tests of ModelRegistry.sol + ModelCommittee.sol, and fuzzed VRFVerifier / dataset rows.

A Hypothesis ``RuleBasedStateMachine`` sends random sequences of registry calls from several accounts
(owners, a stranger, the EMERGENCY_ROLE holder, two committees and their members) to the REAL registry
on the shared anvil of ``tests/onchain/conftest.py`` (tiny real circuits, real proofs), and keeps a Python model
of what the state must be. Every rule says, from the model alone, whether the call must succeed or
revert and with which custom error; the chain must agree. After every step the invariants of
``verifiers/INVARIANTS.md`` are checked on chain against the model (S1, S3-S9, C1, C3): each example
runs between ``evm_snapshot`` and ``evm_revert``.

Then ``@given`` properties: ``VRFVerifier.verify`` agrees with ``zkml.vrf.verify`` on genuine proofs,
bit flips of them and random bytes (true only for genuine proofs; malformed input reverts or returns
false), and ``verifyDatasetRow`` is true only for the genuine rows of a committed dataset under random
index / feature / label / Merkle path mutations.

Bounded for ``make test`` (profile ``zkml-fuzz``: fixed seed, no example database); ``ZKML_FUZZ=long``
selects ``zkml-fuzz-long`` (``make fuzz``, random seeds, many more examples and steps).
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak
from chainkit import (
    EMERGENCY_KEY,
    STRANGER_KEY,
    World,
    as_key,
    record_for,
)
from hypothesis import HealthCheck, assume, currently_in_test_context, event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, get_state_machine_test, initialize, invariant, rule

from zkml import vrf
from zkml.commitments import dataset as zdata
from zkml.commitments.merkle import verify_inclusion
from zkml.evm import vrf_onchain
from zkml.evm.chain import Chain, Contract, ContractRevert
from zkml.evm.registry import InstanceLayout, ModelRecord, Registry, commit, model_id_of
from zkml.evm.registry import signing as provenance
from zkml.evm.registry.committee import Committee, CommitteeAction, compile_committee
from zkml.evm.verifier import read_proof
from zkml.keys import SigningKey
from zkml.vrf import SECP256K1, VRFError

# Profiles: the bounded default for `make test`, and `ZKML_FUZZ=long` for `make fuzz`.

_COMMON: dict[str, Any] = dict(deadline=None, database=None, print_blob=True,
                               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                      HealthCheck.function_scoped_fixture])
settings.register_profile("zkml-fuzz", max_examples=40, stateful_step_count=20, derandomize=True, **_COMMON)
settings.register_profile("zkml-fuzz-long", max_examples=int(os.environ.get("ZKML_FUZZ_EXAMPLES", "250")),
                          stateful_step_count=int(os.environ.get("ZKML_FUZZ_STEPS", "30")), derandomize=False,
                          **_COMMON)
PROFILE = "zkml-fuzz-long" if os.environ.get("ZKML_FUZZ") == "long" else "zkml-fuzz"
BASE = settings.get_profile(PROFILE)
#: The state machine: fewer, longer examples than the one-call properties.
MACHINE = settings(BASE, max_examples=BASE.max_examples if PROFILE == "zkml-fuzz-long" else 25)
#: One-call properties (an eth_call each).
PROPERTY = settings(BASE, max_examples=BASE.max_examples * (2 if PROFILE == "zkml-fuzz-long" else 1))

# Accounts: anvil's dev accounts (public test mnemonic) #0 (deployer, admin, owner of the session models),
# #2 and #3 (other owners), #1 (a stranger) and #5 (EMERGENCY_ROLE).
OWNER_KEYS = {
    "owner0": "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "owner2": "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "owner3": "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "stranger": STRANGER_KEY,
    "emergency": EMERGENCY_KEY,
}
ACCOUNTS = list(OWNER_KEYS)
#: Senders, biased towards the account the rule needs: "owner" is the model's current owner,
#: "committee" the model's committee when that is an account (else the stranger).
AS_OWNER = st.sampled_from(["owner"] * 6 + ACCOUNTS)
AS_EMERGENCY = st.sampled_from(["emergency", "emergency", "committee", *ACCOUNTS])
ANYONE = st.sampled_from(["committee", *ACCOUNTS])
#: Which model a rule acts on: an index into the registered ones, or -1 for an id nobody registered.
PICK = st.sampled_from([0] * 6 + [1, 2, 3] * 2 + [-1])
# Committee members sign offline (no ether); the stranger submits committee transactions.
MEMBER_KEYS = [SigningKey.from_secret(keccak(f"zkml fuzz member {i}".encode())) for i in range(4)]
OUTSIDER = SigningKey.from_secret(keccak(b"zkml fuzz outsider"))
SIGNER_POOL = [*MEMBER_KEYS, OUTSIDER]
#: name -> (member indices into MEMBER_KEYS, threshold)
COMMITTEES = {"c1": ([0, 1, 2], 2), "c2": ([2, 3], 1)}
ZERO_ADDRESS = "0x" + "00" * 20
#: Distance kept between the chain clock and every pending deadline when time moves (s), so a decision
#: made from the latest block's timestamp holds for the next block despite wall-clock drift.
MARGIN = 600
#: Examples, invariant checks and (rule: outcome) counts of the state machine, printed after it ran.
STATS: Counter[str] = Counter()


# Fixtures: everything deployed once for the module, inside a module-wide snapshot


@dataclass(frozen=True)
class Proof:
    """A proof the machine can send: its JSON, instances, and what made it."""

    name: str
    json: dict[str, Any]
    instances: list[int]
    circuit: str
    """Circuit key of the proving key that made it (``a``, ``b``, ``h``)."""
    genuine: bool
    """False when a byte of the proof or an instance was changed after proving."""


@dataclass(frozen=True)
class Rec:
    """A record variant: what is sent, the circuit it verifies, the error the registry must give."""

    name: str
    record: ModelRecord
    """Completed (code hashes and window filled in), as the registry stores it."""
    circuit: str | None
    error: str | None
    """Custom error of ``_validate`` (None: valid)."""


@dataclass(frozen=True)
class Env:
    world: World
    regs: dict[str, Registry]
    """Account name -> registry client sending from it."""
    addr: dict[str, str]
    committees: dict[str, Committee]
    """Committee name -> client (submits from the stranger)."""
    records: dict[str, Rec]
    proofs: dict[str, Proof]
    window: int


def _flip_hex(p: dict[str, Any], pos: int = 200) -> dict[str, Any]:
    h = p["hex_proof"]
    return {**p, "hex_proof": h[:pos] + ("0" if h[pos] != "0" else "1") + h[pos + 1:]}


@pytest.fixture(scope="module")
def env(world: World, evm_root: Path) -> Iterator[Env]:
    chain = world.chain
    snap = chain.snapshot()
    try:
        regs = {"owner0": world.registry, **{n: as_key(world.registry, k) for n, k in OWNER_KEYS.items()
                                             if n != "owner0"}}
        addr = {n: str(r.chain.sender) for n, r in regs.items()}
        assert addr["owner0"] == world.registry.chain.sender
        compiled = compile_committee(cache_dir=evm_root / "solc-cache")
        submitter = regs["stranger"].chain
        submitter.remember_abi(world.registry.contract.abi)
        committees = {}
        for name, (idx, k) in COMMITTEES.items():
            c = Committee.deploy(chain, world.registry.address, [MEMBER_KEYS[i].address for i in idx], k,
                                 compiled=compiled, registry_abi=world.registry.contract.abi)
            committees[name] = Committee(submitter.at(compiled, c.address, "committee"))
        c, d, w = world.circuits, world.deployments, world.window
        reg = world.registry
        valid = {
            "a": (record_for(c["a"], d["a"]), "a"),
            "b": (record_for(c["b"], d["b"]), "b"),
            "h": (record_for(c["h"], d["h"]), "h"),
            "a_reusable": (record_for(c["a"], d["a_reusable"]), "a"),
            "b_slow": (record_for(c["b"], d["b"], challenge_window=2 * w), "b"),
        }
        invalid = {
            "bad_layout": (record_for(c["a"], d["a"], layout=InstanceLayout(7, 0, 4, 0, 0, 5, 3)), "InvalidLayout"),
            "short_window": (record_for(c["a"], d["a"], challenge_window=w - 1), "WindowOutOfRange"),
            "long_window": (record_for(c["b"], d["b"], challenge_window=365 * 86400 + 1), "WindowOutOfRange"),
            "wrong_code_hash": (record_for(c["a"], d["a"], verifier_code_hash=b"\x01" * 32), "CodeHashMismatch"),
            "no_weights": (record_for(c["h"], d["h"], weights_commitment=None), "MissingWeightsCommitment"),
            "eoa_verifier": (dataclasses.replace(record_for(c["a"], d["a"]), verifier=addr["stranger"]),
                             "NoVerifierCode"),
        }
        records = {n: Rec(n, reg.complete(r), cir, None) for n, (r, cir) in valid.items()}
        records |= {n: Rec(n, reg.complete(r), None, err) for n, (r, err) in invalid.items()}
        proofs: dict[str, Proof] = {}
        for key in ("a", "b", "h"):
            for which, suffix in (("proof", ""), ("other", "_other")):
                pj = c[key].proof_json(which)
                proofs[key + suffix] = Proof(key + suffix, pj, read_proof(pj)[1], key, True)
            bad = _flip_hex(c[key].proof_json())
            proofs[key + "_bad"] = Proof(key + "_bad", bad, read_proof(bad)[1], key, False)
        bj = c["b"].proof_json()
        out = {**bj, "instances": [bj["instances"][0][:-1] + ["01" + "00" * 31]]}
        proofs["b_out"] = Proof("b_out", out, read_proof(out)[1], "b", False)
        yield Env(world, regs, addr, committees, records, proofs, w)
    finally:
        chain.revert(snap)


# The model


@dataclass
class Pending:
    version: int
    deadline: int
    test_in: bytes
    predicted: bytes


@dataclass
class ModelState:
    """What the registry must hold for one model."""

    mid: bytes
    owner: str
    records: list[Rec]
    status: list[str]
    accepted: list[int]
    """Stack of accepted versions; the top is the active one."""
    paused: bool = False
    pending: Pending | None = None
    committee: str = ZERO_ADDRESS
    recorded: set[str] = field(default_factory=set)
    """Proof names recorded by verifyAndRecord."""
    hotfixed: set[int] = field(default_factory=set)
    """Versions the committee finalized before their window ended."""
    deadlines: dict[int, int] = field(default_factory=dict)

    @property
    def current(self) -> int:
        return self.accepted[-1]

    @property
    def latest(self) -> int:
        return len(self.records)

    def active(self) -> Rec:
        return self.records[self.current - 1]


def instances_error(rec: ModelRecord, inst: list[int]) -> str | None:
    """``_checkInstances``: the error for these instances under ``rec``, or None."""
    lay = rec.layout
    if len(inst) != lay.total:
        return "InstanceCountMismatch"
    if lay.weights_len:
        got = (inst[lay.weights_offset].to_bytes(32, "big") if lay.weights_len == 1
               else commit(inst[lay.weights_offset:lay.weights_offset + lay.weights_len]))
        if got != rec.weights_commitment:
            return "WeightsCommitmentMismatch"
    return None


def accepts(rec: Rec, proof: Proof) -> bool:
    """Whether the record's verifier accepts the proof: a genuine proof of the same circuit."""
    return proof.genuine and proof.circuit == rec.circuit


def expect(error: str | None, fn: Callable[[], Any]) -> Any:
    """Run ``fn``; it must revert with custom error ``error``, or succeed when ``error`` is None."""
    if error is None:
        return fn()
    with pytest.raises(ContractRevert) as info:
        fn()
    assert info.value.error_name == error, f"expected {error}, got {info.value.error_name}: {info.value}"
    return None


class RegistryMachine(RuleBasedStateMachine):
    """Random registry/committee calls on a real chain against a Python model of the state."""

    def __init__(self, env: Env):
        super().__init__()
        self.env = env
        self.chain: Chain = env.world.chain
        self.reg = env.world.registry
        self.snap = self.chain.snapshot()
        STATS["examples"] += 1
        self.start_block = self.chain.block_number()
        self.block_ts: dict[int, int] = {}
        self.nonces: dict[tuple[str, bytes], int] = {}
        a = env.records["a"]
        # The session's model-a, as the session world registered it
        mid = self.reg.model_id("model-a")
        self.models: list[ModelState] = [ModelState(mid, env.addr["owner0"], [a], ["accepted"], [1])]
        self.unknown = model_id_of(env.addr["owner0"], "never-registered")

    def teardown(self) -> None:
        self.chain.revert(self.snap)

    # helpers

    def run(self, rule: str, error: str | None, fn: Callable[[], Any]) -> Any:
        """``expect(error, fn)``, counted per (rule, outcome) for the statistics."""
        outcome = f"{rule}: {error or 'ok'}"
        STATS[outcome] += 1
        if currently_in_test_context():
            event(outcome)
        return expect(error, fn)

    def pick(self, i: int) -> ModelState | None:
        return None if i < 0 else self.models[i % len(self.models)]

    def who(self, who: str, m: ModelState | None) -> str:
        """An account name for a symbolic sender ("owner", "committee")."""
        by_addr = {a: n for n, a in self.env.addr.items()}
        if who == "owner":
            return by_addr.get(m.owner, "owner0") if m is not None else "owner0"
        if who == "committee":
            return by_addr.get(m.committee, "stranger") if m is not None else "stranger"
        return who

    def mid_of(self, m: ModelState | None) -> bytes:
        return self.unknown if m is None else m.mid

    def now(self) -> int:
        """The clock the next block will (to within MARGIN) have."""
        return self.chain.timestamp()

    def block_time(self, block: int) -> int:
        if block not in self.block_ts:
            blk = self.chain.rpc("eth_getBlockByNumber", [hex(block), False])
            self.block_ts[block] = int(blk["timestamp"], 16)
        return self.block_ts[block]

    def commitments(self, rec: Rec, prediction: str) -> tuple[bytes, bytes]:
        """(test input, predicted output) commitments of a proposal of ``rec``."""
        proof = self.env.proofs[rec.circuit or "a"]
        lay = rec.record.layout
        if lay.total != len(proof.instances):  # an invalid layout: any non-zero commitments
            return commit([1]), commit([2])
        test_in = commit(lay.inputs(proof.instances))
        honest = commit(lay.outputs(proof.instances))
        return test_in, {"honest": honest, "lie": commit([1, 2, 3]), "zero": b"\x00" * 32}[prediction]

    def propose_error(self, m: ModelState | None, sender: str | None, rec: Rec, test_in: bytes,
                      predicted: bytes) -> str | None:
        """``onlyModelOwner`` (when ``sender`` is given) then ``_propose``'s checks."""
        if m is None:
            return "UnknownModel"
        if sender is not None and self.env.addr[sender] != m.owner:
            return "NotModelOwner"
        if m.pending is not None:
            return "UpdateAlreadyPending"
        if rec.error is not None:
            return rec.error
        if test_in == b"\x00" * 32 or predicted == b"\x00" * 32:
            return "MissingTestCommitment"
        return None

    def proposed(self, m: ModelState, rec: Rec, test_in: bytes, predicted: bytes,
                 result: tuple[int, int, Any]) -> None:
        version, deadline, receipt = result
        # S3: a new version is exactly latest + 1; I4: the deadline is the active version's window
        assert version == m.latest + 1
        assert deadline == self.block_time(receipt.block) + int(m.active().record.challenge_window or 0)
        m.records.append(rec)
        m.status.append("pending")
        m.pending = Pending(version, deadline, test_in, predicted)
        m.deadlines[version] = deadline

    # Start: model-a maybe handed to a committee (a contract, or an account), maybe with an update pending

    @initialize(committee=st.sampled_from(["c1", "c1", "c2", "stranger", "none"]),
                proposal=st.sampled_from(["b:lie", "b:lie", "b:honest", "h:lie", "b_slow:lie", "none"]))
    def start(self, committee: str, proposal: str) -> None:
        m = self.models[0]
        if committee != "none":
            self.run("set_committee", None, lambda: self.reg.set_committee(m.mid, self.target(committee)))
            m.committee = self.target(committee)
        if proposal != "none":
            rec, prediction = proposal.split(":")
            r = self.env.records[rec]
            test_in, predicted = self.commitments(r, prediction)
            result = self.run("propose", None, lambda: self.reg.propose_update(m.mid, r.record, test_in, predicted))
            self.proposed(m, r, test_in, predicted, result)

    # Rules: registration and updates

    @rule(who=st.sampled_from(["owner0", "owner2"]), name=st.sampled_from(["model-a", "fz"]),
          rec=st.sampled_from(["a", "b", "h", "a_reusable", "b_slow", "bad_layout", "short_window",
                               "wrong_code_hash", "no_weights", "eoa_verifier"]))
    def register(self, who: str, name: str, rec: str) -> None:
        r = self.env.records[rec]
        mid = model_id_of(self.env.addr[who], name)
        known = any(m.mid == mid for m in self.models)
        error = "ModelAlreadyRegistered" if known else r.error
        self.run("register", error, lambda: self.env.regs[who].register(name, r.record))
        if error is None:
            self.models.append(ModelState(mid, self.env.addr[who], [r], ["accepted"], [1]))

    @rule(who=AS_OWNER, i=PICK,
          rec=st.sampled_from(["a", "b", "h", "a_reusable", "b_slow"] * 3 + [
              "bad_layout", "short_window", "long_window", "wrong_code_hash", "no_weights", "eoa_verifier"]),
          prediction=st.sampled_from(["honest", "honest", "lie", "lie", "lie", "zero"]))
    def propose(self, who: str, i: int, rec: str, prediction: str) -> None:
        m, r = self.pick(i), self.env.records[rec]
        who = self.who(who, m)
        test_in, predicted = self.commitments(r, prediction)
        error = self.propose_error(m, who, r, test_in, predicted)
        result = self.run("propose", error, lambda: self.env.regs[who].propose_update(self.mid_of(m), r.record, test_in,
                                                                         predicted))
        if error is None:
            assert m is not None
            self.proposed(m, r, test_in, predicted, result)

    @rule(submitter=st.sampled_from(ACCOUNTS), signer=AS_OWNER, i=st.integers(0, 5),
          rec=st.sampled_from(["a", "b", "h", "b_slow", "bad_layout"]), offset=st.sampled_from([1, 1, 0, 2]),
          prediction=st.sampled_from(["honest", "lie", "lie"]))
    def propose_signed(self, submitter: str, signer: str, i: int, rec: str, offset: int, prediction: str) -> None:
        m, r = self.pick(i), self.env.records[rec]
        assert m is not None
        signer = self.who(signer, m)
        test_in, predicted = self.commitments(r, prediction)
        version = m.latest + offset
        key = SigningKey.from_secret(bytes.fromhex(OWNER_KEYS[signer][2:]))
        if offset != 1:
            error: str | None = "WrongVersion"
        elif self.env.addr[signer] != m.owner:
            error = "SignerNotOwner"
        else:
            error = self.propose_error(m, None, r, test_in, predicted)
        result = self.run("propose_signed", error, lambda: self.env.regs[submitter].propose_update_signed(
            m.mid, r.record, test_in, predicted, key, version=version))
        if error is None:
            self.proposed(m, r, test_in, predicted, result)

    @rule(who=st.sampled_from(ACCOUNTS), i=PICK,
          proof=st.sampled_from(["pending"] * 6 + ["a", "a_other", "a_bad", "b", "b_other", "b_bad", "b_out", "h",
                                                   "h_bad"]))
    def challenge(self, who: str, i: int, proof: str) -> None:
        m = self.pick(i)
        if proof == "pending":  # the genuine proof of the pending record's circuit, on the test input
            proof = m.records[m.pending.version - 1].circuit or "a" if m is not None and m.pending else "b"
        p = self.env.proofs[proof]
        error: str | None = None
        if m is None:
            error = "UnknownModel"
        elif m.pending is None:
            error = "NoPendingUpdate"
        elif self.now() >= m.pending.deadline:
            error = "ChallengeWindowClosed"
        else:
            rec = m.records[m.pending.version - 1]
            lay = rec.record.layout
            error = instances_error(rec.record, p.instances)
            if error is None:
                if commit(lay.inputs(p.instances)) != m.pending.test_in:
                    error = "TestInputMismatch"
                elif commit(lay.outputs(p.instances)) == m.pending.predicted:
                    error = "OutputMatchesPrediction"
                elif not accepts(rec, p):
                    error = "InvalidProof"
        self.run("challenge", error, lambda: self.env.regs[who].challenge(self.mid_of(m), p.json))
        if error is None:
            assert m is not None and m.pending is not None
            m.status[m.pending.version - 1] = "rejected"
            m.pending = None

    @rule(who=st.sampled_from(["owner", "emergency", *ACCOUNTS]), i=PICK)
    def cancel(self, who: str, i: int) -> None:
        m = self.pick(i)
        who = self.who(who, m)
        addr = self.env.addr[who]
        if m is None:
            error: str | None = "UnknownModel"
        elif addr != m.owner and who != "emergency":
            error = "NotModelOwner"
        elif m.pending is None:
            error = "NoPendingUpdate"
        else:
            error = None
        self.run("cancel", error, lambda: self.env.regs[who].cancel_update(self.mid_of(m)))
        if error is None:
            assert m is not None and m.pending is not None
            m.status[m.pending.version - 1] = "cancelled"
            m.pending = None

    def finalized(self, m: ModelState, early: bool) -> None:
        assert m.pending is not None
        v = m.pending.version
        m.status[v - 1] = "accepted"
        m.accepted.append(v)
        m.pending = None
        if early:
            m.hotfixed.add(v)

    @rule(who=ANYONE, i=PICK)
    def finalize(self, who: str, i: int) -> None:
        m = self.pick(i)
        who = self.who(who, m)
        early = False
        if m is None:
            error: str | None = "UnknownModel"
        else:
            early = m.pending is not None and self.now() < m.pending.deadline
            if early and self.env.addr[who] != m.committee:
                error = "ChallengeWindowOpen"
            elif m.pending is None:
                error = "NoPendingUpdate"
            else:
                error = None
        self.run("finalize", error, lambda: self.env.regs[who].finalize(self.mid_of(m)))
        if error is None:
            assert m is not None
            self.finalized(m, early)

    @rule(seconds=st.sampled_from([60, 900, 1800, 3900, 7500, 11000]))
    def advance_time(self, seconds: int) -> None:
        t = self.now()
        deadlines = [m.pending.deadline for m in self.models if m.pending is not None]
        while any(abs(t + seconds - d) < MARGIN for d in deadlines):
            seconds += MARGIN
        self.chain.increase_time(seconds)
        assert self.now() >= t + seconds

    # Rules: emergency controls, ownership, committees

    def emergency_error(self, m: ModelState | None, caller: str, action: str) -> str | None:
        if m is None:
            return "UnknownModel"
        if caller != m.committee and caller != self.env.addr["emergency"]:
            return "AccessControlUnauthorizedAccount"
        if action == "pause" and m.paused:
            return "ModelIsPaused"
        if action == "unpause" and not m.paused:
            return "ModelNotPaused"
        if action == "rollback" and len(m.accepted) < 2:
            return "NothingToRollBack"
        return None

    def emergency_effect(self, m: ModelState, action: str) -> None:
        if action == "pause":
            m.paused = True
        elif action == "unpause":
            m.paused = False
        else:  # rollback: revoke the active version, reactivate the previous accepted one (S6)
            m.status[m.accepted.pop() - 1] = "revoked"

    @rule(who=AS_EMERGENCY, i=PICK, action=st.sampled_from(["pause", "unpause", "rollback"]))
    def emergency(self, who: str, i: int, action: str) -> None:
        m = self.pick(i)
        who = self.who(who, m)
        error = self.emergency_error(m, self.env.addr[who], action)
        self.run("emergency", error, lambda: getattr(self.env.regs[who], action)(self.mid_of(m)))
        if error is None:
            assert m is not None
            self.emergency_effect(m, action)

    @rule(who=AS_OWNER, i=PICK, to=st.sampled_from(ACCOUNTS))
    def transfer(self, who: str, i: int, to: str) -> None:
        m = self.pick(i)
        who = self.who(who, m)
        if m is None:
            error: str | None = "UnknownModel"
        else:
            error = "NotModelOwner" if self.env.addr[who] != m.owner else None
        self.run("transfer", error, lambda: self.env.regs[who].transfer_ownership(self.mid_of(m), self.env.addr[to]))
        if error is None:
            assert m is not None
            m.owner = self.env.addr[to]

    def target(self, name: str) -> str:
        if name in self.env.committees:
            return self.env.committees[name].address
        return ZERO_ADDRESS if name == "zero" else self.env.addr[name]

    @rule(who=st.sampled_from(["owner", "owner", "committee", *ACCOUNTS]), i=st.integers(0, 5),
          to=st.sampled_from(["c1", "c1", "c2", "stranger", "zero"]))
    def set_committee(self, who: str, i: int, to: str) -> None:
        m = self.pick(i)
        assert m is not None
        who = self.who(who, m)
        caller = self.env.addr[who]
        allowed = caller == (m.owner if m.committee == ZERO_ADDRESS else m.committee)
        error = None if allowed else "NotCommittee"
        self.run("set_committee", error, lambda: self.env.regs[who].set_committee(m.mid, self.target(to)))
        if error is None:
            m.committee = self.target(to)

    @rule(c=st.sampled_from(["current"] * 4 + list(COMMITTEES)), i=PICK,
          action=st.sampled_from(["pause", "unpause", "rollback", "hotfix", "hotfix", "set-committee"]),
          signers=st.one_of(st.sampled_from(["k", "k", "all", "k-1", "dup"]), st.lists(st.integers(0, 4), max_size=4)),
          variant=st.sampled_from(["fresh", "fresh", "fresh", "stale", "version"]),
          new=st.sampled_from(["c1", "c2", "stranger"]))
    def committee_execute(self, c: str, i: int, action: str, signers: str | list[int], variant: str,
                          new: str) -> None:
        m = self.pick(i)
        if c == "current":
            c = next((n for n, cc in self.env.committees.items() if m is not None and cc.address == m.committee), "c1")
        committee = self.env.committees[c]
        member_idx, k = COMMITTEES[c]
        mid = self.mid_of(m)
        # What the members sign: the model's version for the action, its record digest, the nonce
        version = 0 if m is None else (m.pending.version if action == "hotfix" and m.pending else
                                       (0 if action == "hotfix" else m.current))
        record_hash = b"\x00" * 32
        if m is not None and version:
            record_hash = provenance.record_digest(m.records[version - 1].record.signable(mid, version),
                                                   self.chain.chain_id, self.reg.address)
        nonce = self.nonces.get((c, mid), 0)
        signed_nonce = nonce + 1 if variant == "stale" else nonce
        signed_version = version + 1 if variant == "version" else version
        new_committee = self.target(new) if action == "set-committee" else ZERO_ADDRESS
        act = CommitteeAction(action, mid, signed_version, record_hash, signed_nonce, new_committee)
        if signers == "k":
            keys = [MEMBER_KEYS[j] for j in member_idx[:k]]
        elif signers == "all":
            keys = [MEMBER_KEYS[j] for j in reversed(member_idx)]
        elif signers == "k-1":
            keys = [MEMBER_KEYS[j] for j in member_idx[:k - 1]]
        elif signers == "dup":
            keys = [MEMBER_KEYS[member_idx[0]]] * max(2, k)
        else:
            assert isinstance(signers, list)
            keys = [SIGNER_POOL[j] for j in signers]
        sigs = [committee.sign(act, key).signature for key in keys]
        # ModelCommittee.execute's checks, in order (C1 distinct members, C3 nonce), then the registry's
        members = {MEMBER_KEYS[j].address for j in member_idx}
        error: str | None = None
        if m is None or m.committee != committee.address:
            error = "NotThisCommittee"
        elif signed_nonce != nonce:
            error = "StaleNonce"
        elif signed_version != version:
            error = "VersionMismatch"
        elif len(keys) < k:
            error = "NotEnoughApprovals"
        else:
            seen: set[str] = set()
            for key in keys:
                if key.address not in members:
                    error = "NotMember"
                    break
                if key.address in seen:
                    error = "DuplicateSigner"
                    break
                seen.add(key.address)
        if error is None:
            assert m is not None
            if action in ("pause", "unpause", "rollback"):
                error = self.emergency_error(m, committee.address, action)
            elif action == "hotfix" and m.pending is None:
                error = "NoPendingUpdate"
        early = action == "hotfix" and m is not None and m.pending is not None and self.now() < m.pending.deadline
        receipt = self.run("committee_execute", error, lambda: committee.execute_raw(act, sigs))
        if error is None:
            assert m is not None
            ev = dict(committee.events(receipt))["CommitteeActionExecuted"]
            assert sorted(ev["signers"]) == sorted(key.address for key in keys)  # C5: the signers are named
            self.nonces[(c, mid)] = nonce + 1
            if action in ("pause", "unpause", "rollback"):
                self.emergency_effect(m, action)
            elif action == "hotfix":
                self.finalized(m, early)
            else:
                m.committee = new_committee

    # Rules: verification

    @rule(who=st.sampled_from(ACCOUNTS), i=PICK,
          proof=st.sampled_from(["active"] * 3 + ["a", "a_other", "a_bad", "b", "b_other", "b_bad", "b_out", "h",
                                                  "h_bad"]),
          record_it=st.booleans())
    def verify(self, who: str, i: int, proof: str, record_it: bool) -> None:
        m = self.pick(i)
        if proof == "active":  # a genuine proof of the active record's circuit
            proof = m.active().circuit or "a" if m is not None else "a"
        p = self.env.proofs[proof]
        error: str | None
        if m is None:
            error = "UnknownModel"
        elif m.paused:
            error = "ModelIsPaused"
        else:
            error = instances_error(m.active().record, p.instances)
        reg = self.env.regs[who]
        if not record_it:
            verdict = self.run("verify", error, lambda: reg.verify(self.mid_of(m), p.json))
            if error is None:
                assert m is not None
                assert verdict is accepts(m.active(), p)
            return
        if error is None:
            assert m is not None
            if proof in m.recorded:
                error = "ProofAlreadyRecorded"
            elif not accepts(m.active(), p):
                error = "InvalidProof"
        self.run("verify", error, lambda: reg.verify_and_record(self.mid_of(m), p.json))
        if error is None:
            assert m is not None
            m.recorded.add(proof)
            assert reg.recorded_by(m.mid, p.json) == self.env.addr[who]

    # Invariants, on chain against the model, after every step

    @invariant()
    def models_match_chain(self) -> None:
        STATS["invariant checks"] += 1
        for m in self.models:
            owner, current, latest, paused, pending = self.reg.contract.call("getModel", m.mid)
            assert str(owner) == m.owner  # S9: only transfers by the owner change it
            # S1: 0 < current <= latest; S5: the active version is accepted; S6: top of the accepted stack
            assert (int(current), int(latest), bool(paused)) == (m.current, m.latest, m.paused)
            assert 0 < m.current <= m.latest and m.status[m.current - 1] == "accepted"
            # S3: a pending update is the newest version, and Pending
            if m.pending is None:
                assert int(pending["version"]) == 0
            else:
                assert m.pending.version == m.latest and m.status[-1] == "pending"
                assert (int(pending["version"]), int(pending["deadline"]), bytes(pending["testInputCommitment"]),
                        bytes(pending["predictedOutputCommitment"])) == (
                    m.pending.version, m.pending.deadline, m.pending.test_in, m.pending.predicted)
            # S4: history is append-only: every stored record is the one sent, unchanged; S2/S5 statuses
            for v in range(1, m.latest + 1):
                stored = ModelRecord.from_abi(self.reg.contract.call("getRecord", m.mid, v))
                assert stored.as_tuple() == m.records[v - 1].record.as_tuple(), f"record v{v} changed"
                assert self.reg.version_status(m.mid, v) == m.status[v - 1]
            assert self.reg.version_status(m.mid, m.latest + 1) == "none"
            assert str(self.reg.contract.call("committeeOf", m.mid)).lower() == m.committee.lower()
            for c, committee in self.env.committees.items():
                assert committee.nonce(m.mid) == self.nonces.get((c, m.mid), 0)

    @invariant()
    def paused_never_verifies(self) -> None:
        """S7: a genuine proof of the active version verifies, unless the model is paused: then it reverts."""
        for m in self.models:
            genuine = self.env.proofs[m.active().circuit or "a"]
            if m.paused:
                expect("ModelIsPaused", lambda: self.reg.verify(m.mid, genuine.json))
            else:
                assert self.reg.verify(m.mid, genuine.json) is True

    @invariant()
    def updates_finalize_after_window_unchallenged(self) -> None:
        """S8 from the event log: every finalized version was proposed, never challenged or cancelled, and
        finalized at or after its deadline unless the committee hotfixed it; S5: rejected never active."""
        if self.chain.block_number() <= self.start_block:
            return  # nothing mined in this example yet
        for m in self.models:
            trail = self.reg.contract.history(topics=["0x" + m.mid.hex()], from_block=self.start_block + 1)
            ended: set[int] = set()
            for ev in trail:
                if ev.name in ("UpdateChallenged", "DeferredChallenged", "UpdateCancelled"):
                    ended.add(int(ev.args["version"]))
                elif ev.name == "UpdateFinalized":
                    v = int(ev.args["version"])
                    assert v in m.deadlines and v not in ended
                    if v not in m.hotfixed:
                        assert self.block_time(ev.block) >= m.deadlines[v]
                    ended.add(v)
            for v, status in enumerate(m.status, start=1):
                if status in ("rejected", "cancelled"):
                    assert v not in m.accepted


_MACHINE_ENV: dict[str, Env] = {}


@pytest.fixture(scope="module", autouse=True)
def _machine_env(env: Env) -> Iterator[None]:
    """The state machine's test is Hypothesis' own (so --hypothesis-show-statistics reports it): it takes
    no fixtures, and finds the module's Env here."""
    _MACHINE_ENV["env"] = env
    yield
    _MACHINE_ENV.clear()


#: Random call sequences never break the model's expectations or the invariants (module docstring).
test_registry_state_machine = get_state_machine_test(lambda: RegistryMachine(_MACHINE_ENV["env"]),
                                                     settings=MACHINE)


def test_state_machine_ran_and_left_the_chain_as_it_found_it(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    """Runs after the machine: every example was reverted, and the machine did exercise the registry."""
    assert env.world.registry.model("model-a").latest_version == 1
    assert env.world.registry.committee_of("model-a") is None
    steps = sum(n for k, n in STATS.items() if ":" in k)
    assert STATS["examples"] > 0 and steps > 0
    ok = sorted(k for k in STATS if k.endswith(": ok"))
    with capsys.disabled():
        refusals = steps - sum(STATS[k] for k in ok)
        print(f"\n[registry state machine, profile {PROFILE}] {STATS['examples']} examples, {steps} calls "
              f"({refusals} expected reverts), {STATS['invariant checks']} invariant checks")
        for k in sorted(k for k in STATS if ":" in k):
            print(f"  {k}: {STATS[k]}")
    # the random sequences reached state-changing paths, not only refusals (test_machine_walkthrough
    # takes every success path on purpose)
    assert len(ok) >= 6, ok
    assert len([k for k in STATS if ":" in k]) >= 25


# Fuzzed inputs: VRFVerifier


VRF_SK = bytes.fromhex("c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721")
VRF_PK = vrf.public_key(SECP256K1, VRF_SK)
VRF_ALPHA = b"fuzz epoch 7"
VRF_PI = vrf.prove(SECP256K1, VRF_SK, VRF_ALPHA)
VRF_HELPERS = vrf_onchain.fast_verify_params(VRF_PK, VRF_ALPHA, VRF_PI)


@pytest.fixture(scope="module")
def vrf_verifier(world: World, evm_root: Path) -> Contract:
    """The VRFVerifier the session registry was deployed with."""
    compiled = vrf_onchain.compile_verifier(cache_dir=evm_root / "solc-cache")
    return world.chain.at(compiled, str(world.registry.contract.call("vrfVerifier")), "vrf")


def _onchain_vrf(verifier: Contract, pk: bytes, alpha: bytes, pi: bytes,
                 helpers: vrf_onchain.FastVerifyParams | tuple[list[int], list[int], list[int]]) -> bytes | None:
    """beta when the contract accepts; None when it returns false or reverts."""
    args = helpers.as_args() if isinstance(helpers, vrf_onchain.FastVerifyParams) else helpers
    try:
        valid, beta = verifier.call("verify", pk, alpha, pi, *args)
    except ContractRevert:
        return None
    if not valid:
        assert bytes(beta) == b"\x00" * 32
        return None
    return bytes(beta)


def _python_vrf(pk: bytes, alpha: bytes, pi: bytes) -> bytes | None:
    try:
        return vrf.verify(SECP256K1, pk, alpha, pi)
    except VRFError:
        return None


def _helpers_or_genuine(pk: bytes, alpha: bytes, pi: bytes) -> vrf_onchain.FastVerifyParams:
    try:
        return vrf_onchain.fast_verify_params(pk, alpha, pi)
    except VRFError:
        return VRF_HELPERS


@PROPERTY
@given(sk=st.integers(1, SECP256K1.curve.n - 1), alpha=st.binary(max_size=64),
       flip=st.one_of(st.none(), st.tuples(st.integers(0, 80), st.integers(0, 7))))
def test_vrf_genuine_and_bit_flipped_proofs_agree_with_python(vrf_verifier: Contract, sk: int, alpha: bytes,
                                                              flip: tuple[int, int] | None) -> None:
    pk = vrf.public_key(SECP256K1, sk.to_bytes(32, "big"))
    pi = vrf.prove(SECP256K1, sk.to_bytes(32, "big"), alpha)
    if flip is not None:
        pos, bit = flip
        pi = pi[:pos] + bytes([pi[pos] ^ (1 << bit)]) + pi[pos + 1:]
    python = _python_vrf(pk, alpha, pi)
    chain = _onchain_vrf(vrf_verifier, pk, alpha, pi, _helpers_or_genuine(pk, alpha, pi))
    assert chain == python
    # true only for the genuine proof, with Python's beta
    assert (chain is not None) is (flip is None)


_U256 = st.integers(0, 2**256 - 1)
_POINT = st.lists(_U256, min_size=2, max_size=2)


@PROPERTY
@given(pk=st.one_of(st.just(VRF_PK), st.binary(max_size=40), st.binary(min_size=33, max_size=33)),
       alpha=st.one_of(st.just(VRF_ALPHA), st.binary(max_size=48)),
       pi=st.one_of(st.binary(max_size=100), st.binary(min_size=81, max_size=81),
                    st.integers(0, 80).map(lambda n: VRF_PI[:n])),
       helpers=st.one_of(st.just(None), st.tuples(_POINT, _POINT, _POINT)))
def test_vrf_random_bytes_never_verify(vrf_verifier: Contract, pk: bytes, alpha: bytes, pi: bytes,
                                       helpers: tuple[list[int], list[int], list[int]] | None) -> None:
    assume(pi != VRF_PI)
    assert _python_vrf(pk, alpha, pi) is None
    chain = _onchain_vrf(vrf_verifier, pk, alpha, pi, helpers if helpers is not None else VRF_HELPERS)
    assert chain is None  # reverts or returns false, never true


@PROPERTY
@given(helpers=st.tuples(_POINT, _POINT, _POINT), which=st.integers(0, 2))
def test_vrf_genuine_proof_with_wrong_helpers_is_refused(vrf_verifier: Contract,
                                                         helpers: tuple[list[int], list[int], list[int]],
                                                         which: int) -> None:
    """Helper points only help: one random point in place of an honest one never passes (and never
    changes beta)."""
    honest = list(VRF_HELPERS.as_args())
    assume(helpers[which] != honest[which])
    mixed = tuple(helpers[j] if j == which else honest[j] for j in range(3))
    assert _onchain_vrf(vrf_verifier, VRF_PK, VRF_ALPHA, VRF_PI, mixed) is None  # type: ignore[arg-type]
    assert _onchain_vrf(vrf_verifier, VRF_PK, VRF_ALPHA, VRF_PI, VRF_HELPERS) == vrf.proof_to_hash(SECP256K1, VRF_PI)


# Fuzzed inputs: dataset rows (verifyDatasetRow against a real committed dataset)

N_ROWS = 11


@dataclass(frozen=True)
class DataModel:
    mid: bytes
    committed: zdata.CommittedDataset
    rows: list[tuple[bytes, bytes]]
    """(features, label) calldata of every row."""


@pytest.fixture(scope="module")
def data_model(env: Env, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DataModel]:
    """A committed 11-row labelled dataset and a model registering its root (inside the module snapshot)."""
    rng = np.random.default_rng(13)
    x = rng.normal(size=(N_ROWS, 3)).astype(np.float32)
    y = rng.integers(0, 10, size=N_ROWS)
    path = tmp_path_factory.mktemp("fuzz-data") / "rows.npz"
    np.savez(path, x=x, y=y)
    committed = zdata.build_commitment(path)
    ds = zdata.load_dataset(path)
    assert ds.labels is not None
    rows = [(np.ascontiguousarray(ds.features[i], dtype=">f8").tobytes(),
             np.asarray([ds.labels[i]], dtype=">f8").tobytes()) for i in range(N_ROWS)]
    reg = env.world.registry
    record = record_for(env.world.circuits["a"], env.world.deployments["a"], dataset_root=committed.commitment.root)
    reg.register("fz-dataset", record)
    yield DataModel(reg.model_id("fz-dataset"), committed, rows)


def _flip_bit(data: bytes, pos: int) -> bytes:
    if not data:
        return b"\x01"
    pos %= len(data) * 8
    return data[:pos // 8] + bytes([data[pos // 8] ^ (1 << (pos % 8))]) + data[pos // 8 + 1:]


MUTATIONS = ["none", "index", "feature-bit", "feature-cut", "feature-extend", "label-bit", "label-drop",
             "other-row", "proof-bit", "proof-drop", "proof-extra", "proof-swap", "other-proof"]


@PROPERTY
@given(index=st.integers(0, N_ROWS - 1), mutation=st.sampled_from(MUTATIONS), pos=st.integers(0, 2**16),
       other=st.integers(0, 2**256 - 1) | st.integers(0, N_ROWS + 2), extra=st.binary(min_size=1, max_size=40))
def test_dataset_row_verifies_only_for_genuine_rows(env: Env, data_model: DataModel, index: int, mutation: str,
                                                    pos: int, other: int, extra: bytes) -> None:
    features, label = data_model.rows[index]
    proof = data_model.committed.proof(index)
    i = index
    if mutation == "index":
        i = other
    elif mutation == "feature-bit":
        features = _flip_bit(features, pos)
    elif mutation == "feature-cut":
        features = features[:pos % len(features)]
    elif mutation == "feature-extend":
        features = features + extra
    elif mutation == "label-bit":
        label = _flip_bit(label, pos)
    elif mutation == "label-drop":
        label = b""
    elif mutation == "other-row":
        features, label = data_model.rows[other % N_ROWS]
    elif mutation == "proof-bit":
        j = pos % len(proof)
        proof = [*proof[:j], _flip_bit(proof[j], pos // len(proof)), *proof[j + 1:]]
    elif mutation == "proof-drop":
        proof = proof[:-1] if pos % 2 else proof[1:]
    elif mutation == "proof-extra":
        proof = [*proof, keccak(extra)]
    elif mutation == "proof-swap" and len(proof) > 1:
        j = pos % (len(proof) - 1)
        proof = [*proof[:j], proof[j + 1], proof[j], *proof[j + 2:]]
    elif mutation == "other-proof":
        proof = data_model.committed.proof(other % N_ROWS)
    genuine = (i < N_ROWS and (features, label) == data_model.rows[i] and proof == data_model.committed.proof(i))
    on_chain = env.world.registry.contract.call("verifyDatasetRow", data_model.mid, proof, i, features, label)
    # an independent leaf (eth_abi + keccak) and Python's Merkle check agree with the registry
    leaf = keccak(keccak(abi_encode(["uint256", "bytes", "bytes"], [i, features, label])))
    assert env.world.registry.contract.call("datasetRowLeaf", i, features, label) == leaf
    assert on_chain is verify_inclusion(data_model.committed.commitment.root, leaf, proof)
    assert on_chain is genuine


@PROPERTY
@given(index=st.integers(0, 2**256 - 1), features=st.binary(max_size=64), label=st.binary(max_size=16),
       proof=st.lists(st.binary(min_size=32, max_size=32), max_size=5))
def test_random_dataset_rows_never_verify(env: Env, data_model: DataModel, index: int, features: bytes,
                                          label: bytes, proof: list[bytes]) -> None:
    assert env.world.registry.contract.call("verifyDatasetRow", data_model.mid, proof, index, features,
                                            label) is False


def test_machine_walkthrough(env: Env) -> None:
    """A fixed sequence through every success path of the machine (so its model of success is exercised
    whatever the random examples reach), checking the invariants after each step."""
    machine = RegistryMachine(env)
    steps: list[tuple[str, dict[str, Any]]] = [
        ("start", dict(committee="c1", proposal="b:lie")),
        ("verify", dict(who="stranger", i=0, proof="a", record_it=True)),
        ("verify", dict(who="stranger", i=0, proof="a", record_it=True)),
        ("challenge", dict(who="stranger", i=0, proof="pending")),
        ("propose", dict(who="owner", i=0, rec="b", prediction="honest")),
        ("finalize", dict(who="stranger", i=0)),
        ("committee_execute", dict(c="current", i=0, action="hotfix", signers="k", variant="fresh", new="c1")),
        ("committee_execute", dict(c="current", i=0, action="pause", signers="k-1", variant="fresh", new="c1")),
        ("committee_execute", dict(c="current", i=0, action="pause", signers="dup", variant="fresh", new="c1")),
        ("committee_execute", dict(c="current", i=0, action="pause", signers=[0, 4], variant="fresh", new="c1")),
        ("committee_execute", dict(c="current", i=0, action="pause", signers="all", variant="fresh", new="c1")),
        ("verify", dict(who="owner2", i=0, proof="active", record_it=False)),
        ("emergency", dict(who="emergency", i=0, action="rollback")),
        ("emergency", dict(who="stranger", i=0, action="unpause")),
        ("committee_execute", dict(c="current", i=0, action="unpause", signers="k", variant="stale", new="c1")),
        ("committee_execute", dict(c="current", i=0, action="unpause", signers="k", variant="fresh", new="c1")),
        ("propose_signed", dict(submitter="stranger", signer="owner", i=0, rec="h", offset=1, prediction="honest")),
        ("advance_time", dict(seconds=3900)),
        ("challenge", dict(who="stranger", i=0, proof="pending")),
        ("finalize", dict(who="owner3", i=0)),
        ("committee_execute", dict(c="current", i=0, action="set-committee", signers="k", variant="fresh",
                                   new="stranger")),
        ("emergency", dict(who="committee", i=0, action="pause")),
        ("set_committee", dict(who="committee", i=0, to="zero")),
        ("set_committee", dict(who="owner", i=0, to="c2")),
        ("transfer", dict(who="owner", i=0, to="owner2")),
        ("propose", dict(who="owner", i=0, rec="a_reusable", prediction="lie")),
        ("cancel", dict(who="emergency", i=0)),
        ("register", dict(who="owner2", name="fz", rec="h")),
        ("propose", dict(who="owner", i=1, rec="b_slow", prediction="honest")),
    ]
    before = Counter(STATS)
    try:
        for name, kwargs in steps:
            getattr(machine, name)(**kwargs)
            machine.models_match_chain()
            machine.paused_never_verifies()
            machine.updates_finalize_after_window_unchallenged()
        m = machine.models[0]
        assert m.status == ["accepted", "rejected", "revoked", "accepted", "cancelled"]
        assert m.paused and m.current == 4 and m.owner == env.addr["owner2"]
        assert m.committee == env.committees["c2"].address and m.hotfixed == {3}
        ran = Counter(STATS)
        ran.subtract(before)
        for rule in ("propose", "propose_signed", "challenge", "finalize", "committee_execute", "emergency",
                     "verify", "cancel", "transfer", "set_committee", "register"):
            assert ran[f"{rule}: ok"] > 0, rule
    finally:
        machine.teardown()

"""k-of-n committee actions (verifiers/ModelCommittee.sol) on a real anvil with real proofs.

A 2-of-3 committee governs ``model-a`` of the session registry (tests/onchain/conftest.py). Members sign offline
(keys derived here; they hold no ether); a stranger's dev account submits. Every test runs between
evm_snapshot / evm_revert.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_utils import keccak
from chainkit import STRANGER_KEY, World, as_key, record_for

from zkml.errors import InputError
from zkml.evm.chain import Chain
from zkml.evm.registry import Registry, RegistryError, proposal_commitments
from zkml.evm.registry.committee import Approval, Committee, approve, compile_committee, execute
from zkml.keys import SigningKey

MEMBERS = [SigningKey.from_secret(keccak(f"zkml committee member {i}".encode())) for i in range(3)]
OUTSIDER = SigningKey.from_secret(keccak(b"zkml not a member"))


@pytest.fixture(scope="module")
def compiled(evm_root: Path):  # type: ignore[no-untyped-def]
    return compile_committee(cache_dir=evm_root / "solc-cache")


@pytest.fixture
def committee(world: World, chain: Chain, compiled) -> Iterator[Committee]:  # type: ignore[no-untyped-def]
    """A 2-of-3 committee named by model-a's owner; the client submits from a stranger's account."""
    reg = world.registry
    c = Committee.deploy(chain, reg.address, [m.address for m in MEMBERS], 2, compiled=compiled,
                         registry_abi=reg.contract.abi)
    events = dict(reg.events(reg.set_committee("model-a", c.address)))
    assert events["CommitteeSet"]["committee"] == c.address
    submitter = as_key(reg, STRANGER_KEY).chain
    submitter.remember_abi(reg.contract.abi)
    yield Committee(submitter.at(compiled, c.address, "committee"))


def approvals(c: Committee, action: str, mid: bytes, signers: list[SigningKey] = MEMBERS[:2]) -> list[Approval]:
    return [approve(c, action, mid, k) for k in signers]


def sign_for_chain(a: Approval, key: SigningKey, chain_id: int) -> Approval:
    """``a``'s action signed by ``key`` under another chain id's EIP-712 domain."""
    sig = Account.unsafe_sign_hash(a.action.digest(chain_id, a.committee), key.secret).signature
    return Approval(chain_id, a.committee, a.action, a.signer, "0x" + bytes(sig).hex())


def propose_b(world: World) -> int:
    """Owner proposes circuit b as model-a's next version (honest prediction); returns the version."""
    b = world.circuits["b"]
    test_in, b_out = proposal_commitments(b.layout(), b.proof)
    version, _, _ = world.registry.propose_update("model-a", record_for(b, world.deployments["b"]), test_in, b_out)
    return version


# What an approval signs


def test_digest_matches_contract_and_binds_every_field(registry: Registry, committee: Committee) -> None:
    mid = registry.model_id("model-a")
    action = committee.current_action("pause", mid)
    assert action.version == 1 and action.nonce == 0
    # the record digest is the registry's own EIP-712 digest of version 1's record
    assert action.record_hash == registry.onchain_record_digest(mid, 1, registry.record(mid, 1))
    digest = action.digest(committee.chain.chain_id, committee.address)
    assert committee.onchain_digest(action) == digest
    changed = [dataclasses.replace(action, action="unpause"), dataclasses.replace(action, version=2),
               dataclasses.replace(action, nonce=1), dataclasses.replace(action, record_hash=b"\x01" * 32),
               dataclasses.replace(action, model_id=registry.model_id("model-b"))]
    assert len({a.digest(committee.chain.chain_id, committee.address) for a in changed} | {digest}) == 6
    assert action.digest(committee.chain.chain_id + 1, committee.address) != digest


# Every action, with k approvals


def test_pause_unpause_hotfix_rollback(world: World, registry: Registry, committee: Committee) -> None:
    mid = registry.model_id("model-a")
    a_proof, b_proof = world.circuits["a"].proof, world.circuits["b"].proof
    # pause: verification through the model reverts
    receipt = execute(committee, approvals(committee, "pause", mid))
    ev = dict(committee.events(receipt))["CommitteeActionExecuted"]
    assert ev["action"] == 0 and ev["nonce"] == 0 and sorted(ev["signers"]) == sorted(m.address for m in MEMBERS[:2])
    assert dict(registry.events(receipt))["ModelPaused"]["by"] == committee.address
    with pytest.raises(RegistryError, match="is paused"):
        registry.verify("model-a", a_proof)
    execute(committee, approvals(committee, "unpause", mid, [MEMBERS[2], MEMBERS[0]]))
    assert registry.verify("model-a", a_proof) is True
    # hotfix: the pending update takes effect now, not after its window
    version = propose_b(world)
    assert registry.model(mid).pending is not None
    with pytest.raises(RegistryError, match="challenge window .* is open"):
        as_key(registry, STRANGER_KEY).finalize(mid)
    hot = approvals(committee, "hotfix", mid)
    assert hot[0].action.version == version
    receipt = execute(committee, hot)
    assert dict(registry.events(receipt))["UpdateFinalized"]["version"] == version
    info = registry.model(mid)
    assert info.current_version == version and info.pending is None
    assert registry.verify("model-a", b_proof) is True
    # rollback: back to version 1
    receipt = execute(committee, approvals(committee, "rollback", mid))
    assert dict(registry.events(receipt))["RolledBack"]["toVersion"] == 1
    assert registry.model(mid).current_version == 1 and registry.version_status(mid, version) == "revoked"
    # the trail: four actions, nonces 0..3
    assert [e.args["nonce"] for e in committee.history(mid)] == [0, 1, 2, 3]


# Refusals


def _sigs(apps: list[Approval]) -> list[str]:
    return [a.signature for a in apps]


def test_k_minus_one_approvals_refused(registry: Registry, committee: Committee) -> None:
    mid = registry.model_id("model-a")
    one = approvals(committee, "pause", mid, MEMBERS[:1])
    with pytest.raises(RegistryError, match="1 approvals given, 2 needed"):
        execute(committee, one)
    assert registry.model(mid).paused is False


def test_duplicate_signer_refused(registry: Registry, committee: Committee) -> None:
    mid = registry.model_id("model-a")
    a = approvals(committee, "pause", mid, MEMBERS[:1])[0]
    with pytest.raises(RegistryError, match=f"{a.signer} approved twice"):
        committee.execute_raw(a.action, [a.signature, a.signature])
    # a second, different signature by the same key (another encoding of s is refused by ECDSA anyway)
    with pytest.raises(RegistryError, match="approved twice"):
        execute(committee, [a, approvals(committee, "pause", mid, MEMBERS[:1])[0]])


def test_non_member_refused(registry: Registry, committee: Committee) -> None:
    mid = registry.model_id("model-a")
    with pytest.raises(InputError, match="is not a member"):
        approve(committee, "pause", mid, OUTSIDER)
    action = committee.current_action("pause", mid)
    outsider = committee.sign(action, OUTSIDER)
    member = committee.sign(action, MEMBERS[0])
    with pytest.raises(RegistryError, match=f"recovers to {OUTSIDER.address}, not a member"):
        execute(committee, [member, outsider])


def test_approval_for_another_model_chain_or_committee_refused(world: World, registry: Registry,
                                                               committee: Committee, compiled) -> None:  # type: ignore[no-untyped-def]
    mid_a, mid_b = registry.model_id("model-a"), registry.model_id("model-b")
    good = approvals(committee, "pause", mid_a)
    # the same signatures presented as an action on model-b (which model-b's owner handed to this committee)
    registry.set_committee("model-b", committee.address)
    other_model = committee.current_action("pause", mid_b)
    with pytest.raises(RegistryError, match="not a member"):
        committee.execute_raw(other_model, _sigs(good))
    # signed for another chain id
    wrong_chain = [sign_for_chain(a, k, a.chain_id + 1) for a, k in zip(good, MEMBERS)]
    with pytest.raises(InputError, match="on chain"):
        execute(committee, wrong_chain)
    with pytest.raises(RegistryError, match="not a member"):
        committee.execute_raw(good[0].action, _sigs(wrong_chain))
    # signed for another committee (same members)
    other = Committee.deploy(committee.chain, registry.address, [m.address for m in MEMBERS], 2, compiled=compiled)
    with pytest.raises(InputError, match="are for committee"):
        execute(other, good)
    # model-a still names `committee`: `other` may not act on it at all
    with pytest.raises(RegistryError, match="governed by .*, not this committee"):
        other.execute_raw(good[0].action, _sigs(good))
    assert registry.model(mid_a).paused is False


def test_hotfix_approval_for_another_record_or_version_refused(world: World, registry: Registry,
                                                               committee: Committee) -> None:
    mid = registry.model_id("model-a")
    propose_b(world)
    hot = approvals(committee, "hotfix", mid)
    # the owner withdraws the update and proposes another record: the approvals named the old one
    registry.cancel_update(mid)
    h = world.circuits["h"]
    test_in, h_out = proposal_commitments(h.layout(), h.proof)
    v3, _, _ = registry.propose_update("model-a", record_for(h, world.deployments["h"]), test_in, h_out)
    with pytest.raises(RegistryError, match=f"approval is for version {v3 - 1} .* applies to version {v3}"):
        execute(committee, hot)
    # the same signatures re-pointed at the new version and record: they recover to nobody
    now = committee.current_action("hotfix", mid)
    assert now.record_hash != hot[0].action.record_hash
    with pytest.raises(RegistryError, match="not a member"):
        committee.execute_raw(now, _sigs(hot))
    # right version, wrong record digest: refused before any signature is looked at
    with pytest.raises(RegistryError, match="approval names record 0x0202"):
        committee.execute_raw(dataclasses.replace(now, record_hash=b"\x02" * 32), _sigs(hot))
    assert registry.model(mid).current_version == 1


def test_pause_approval_for_another_version_refused(world: World, registry: Registry, committee: Committee) -> None:
    mid = registry.model_id("model-a")
    pause_v1 = approvals(committee, "pause", mid)
    propose_b(world)
    execute(committee, approvals(committee, "hotfix", mid))
    with pytest.raises(RegistryError, match="is for action #0 .* next is #1"):
        execute(committee, pause_v1)
    stale = dataclasses.replace(pause_v1[0].action, nonce=1)
    with pytest.raises(RegistryError, match="approval is for version 1 .* applies to version 2"):
        committee.execute_raw(stale, _sigs(pause_v1))


def test_replayed_approval_refused(registry: Registry, committee: Committee) -> None:
    mid = registry.model_id("model-a")
    pause = approvals(committee, "pause", mid)
    execute(committee, pause)
    execute(committee, approvals(committee, "unpause", mid))
    with pytest.raises(RegistryError, match="a replayed or outdated approval"):
        execute(committee, pause)
    assert registry.model(mid).paused is False


def test_committee_is_set_by_owner_once_then_by_committee(world: World, registry: Registry, committee: Committee,
                                                          compiled) -> None:  # type: ignore[no-untyped-def]
    mid = registry.model_id("model-a")
    # nobody but the owner names a first committee
    with pytest.raises(RegistryError, match="is not the committee of model"):
        as_key(registry, STRANGER_KEY).set_committee("0x" + mid.hex(), committee.address)
    # once set, not even the owner changes it
    with pytest.raises(RegistryError, match="is not the committee of model"):
        registry.set_committee(mid, world.deployments["a"].address)
    # the committee hands itself over (k approvals), and the old one has no power left
    new = Committee.deploy(committee.chain, registry.address, [MEMBERS[0].address], 1, compiled=compiled)
    hand = [approve(committee, "set-committee", mid, k, new_committee=new.address) for k in MEMBERS[1:]]
    execute(committee, hand)
    assert registry.committee_of(mid) == new.address
    with pytest.raises(RegistryError, match="not this committee"):
        execute(committee, approvals(committee, "pause", mid))
    execute(new, approvals(new, "pause", mid, MEMBERS[:1]))
    assert registry.model(mid).paused is True


@pytest.mark.parametrize(("members", "threshold"), [([], 1), (["a"], 0), (["a"], 2), (["a", "a"], 1)])
def test_bad_committee_refused(world: World, chain: Chain, compiled, members: list[str], threshold: int) -> None:  # type: ignore[no-untyped-def]
    addrs = [MEMBERS[0].address if m == "a" else m for m in members]
    with pytest.raises(RegistryError, match="a committee needs"):
        Committee.deploy(chain, world.registry.address, addrs, threshold, compiled=compiled)


def test_without_committee_action_paths_are_unchanged(world: World, registry: Registry) -> None:
    """No committee named: a stranger can neither pause nor finalize early (EMERGENCY_ROLE still can pause)."""
    stranger = as_key(registry, STRANGER_KEY)
    with pytest.raises(RegistryError, match="lacks the registry role"):
        stranger.pause("0x" + registry.model_id("model-b").hex())
    assert registry.committee_of("model-b") is None


def test_registry_show_lists_the_committee_and_its_actions(world: World, registry: Registry, committee: Committee,
                                                           tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from zkml.store import Store
    from zkml_cli.main import app

    mid = registry.model_id("model-a")
    execute(committee, approvals(committee, "pause", mid))
    execute(committee, approvals(committee, "unpause", mid))
    st = Store(tmp_path / "store")  # a store that knows this registry, as `zkml deploy` leaves it
    st.chain_records(world.chain.chain_id).write_text(json.dumps(
        {"chain_id": world.chain.chain_id, "registry": {"address": registry.address}, "verifiers": {}, "models": {}}))
    r = CliRunner().invoke(app, ["registry", "show", "0x" + mid.hex(), "--rpc-url", world.chain.rpc_url,
                                 "--store", str(st.root), "--json"])
    assert r.exit_code == 0, r.stdout + r.stderr
    c = json.loads(r.stdout)["committee"]
    assert c["address"] == committee.address and c["threshold"] == 2 and len(c["members"]) == 3
    assert [a["args"]["nonce"] for a in c["actions"]] == [0, 1]


def test_cli_committee_approve_execute(world: World, registry: Registry, tmp_path: Path) -> None:
    """The three commands as a committee uses them: the owner names it, two members sign offline, a stranger submits."""
    import json

    from typer.testing import CliRunner

    from zkml.store import Store
    from zkml_cli.main import app

    runner = CliRunner()
    st = Store(tmp_path / "store")  # a store that knows this registry, as `zkml deploy` leaves it
    st.chain_records(world.chain.chain_id).write_text(json.dumps(
        {"chain_id": world.chain.chain_id, "registry": {"address": registry.address}, "verifiers": {}, "models": {}}))
    mid = "0x" + registry.model_id("model-b").hex()
    common = ["--rpc-url", world.chain.rpc_url, "--store", str(st.root)]
    members = [*(f"--member={m.address}" for m in MEMBERS)]
    # The owner (anvil's first dev account, the embedded default) names a 2-of-3 committee
    r = runner.invoke(app, ["registry", "committee", mid, *members, "--threshold", "2", *common, "--json"])
    assert r.exit_code == 0, r.stdout + r.stderr
    made = json.loads(r.stdout)
    assert made["threshold"] == 2 and made["members"] == [m.address for m in MEMBERS]
    assert registry.committee_of("model-b") == made["committee"]
    # Two members sign a pause offline (key files; the key never shows in the output)
    files = []
    for i, m in enumerate(MEMBERS[:2]):
        kf = tmp_path / f"member{i}.key"
        kf.write_text(m.secret.hex())
        out = tmp_path / f"approval{i}.json"
        r = runner.invoke(app, ["registry", "approve", "pause", mid, "-o", str(out), "--key-file", str(kf), *common])
        assert r.exit_code == 0, r.stdout + r.stderr
        assert m.secret.hex() not in r.stdout + r.stderr and m.address in r.stdout
        files.append(str(out))
    # One approval is k-1: refused in one line, nothing paused
    r = runner.invoke(app, ["registry", "execute", "pause", mid, files[0], *common])
    assert r.exit_code != 0 and r.stderr.count("error:") == 1 and "Traceback" not in r.stderr
    assert registry.model(mid).paused is False
    # A stranger submits both
    skf = tmp_path / "stranger.key"
    skf.write_text(STRANGER_KEY)
    r = runner.invoke(app, ["registry", "execute", "pause", mid, *files, "--key-file", str(skf), *common, "--json"])
    assert r.exit_code == 0, r.stdout + r.stderr
    done = json.loads(r.stdout)
    assert done["paused"] is True and sorted(done["signers"]) == sorted(m.address for m in MEMBERS[:2])
    assert registry.model(mid).paused is True
    # The same approvals again: a replay, refused
    r = runner.invoke(app, ["registry", "execute", "pause", mid, *files, "--key-file", str(skf), *common])
    assert r.exit_code != 0 and r.stderr.count("error:") == 1

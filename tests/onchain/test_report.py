"""``zkml report``: the static HTML page of a model's on-chain facts, on a real anvil, rendered by a real browser.

World (module fixture, its own anvil on chain 31339 and a store of its own): two tiny Linear(4,3)+ReLU
circuits (chainkit.export_linear, seeds 0 and 1); model ``tiny_report`` registered from circuit a;
two proofs verified on chain (``verifyAndRecord``), one more proven but never sent; version 2 (circuit b)
proposed and finalized after its window; version 3 proposed with a lying prediction and challenged
(rejected); version 4 proposed with an attacker-written metadata URI and cancelled; a pause and an unpause
by the emergency holder; an audit recorded; a 2-of-3 committee named, which rolls version 2 back.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import struct
import subprocess
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from eth_utils import keccak
from chainkit import EMERGENCY_KEY, OTHER_INPUT, TEST_INPUT, export_linear
from typer.testing import CliRunner

from zkml.bundle import Bundle
from zkml.calibrate import CircuitOptions
from zkml.circuit import compile_model
from zkml.evm.anvil import ANVIL_DEV_KEY, Anvil
from zkml.evm.chain import Chain, connect
from zkml.evm.deploy import deploy_circuit, ensure_existing_registry
from zkml.evm.governance import challenge_update, propose_circuit, registry_action
from zkml.evm.registry import Registry, commit
from zkml.evm.registry.committee import Committee, approve, execute
from zkml.keys import SigningKey
from zkml.prove import prove
from zkml.store import Store
from zkml_cli.main import app

runner = CliRunner()
CHAIN_ID = 31_339  # its own chain id: its store records never meet another module's anvil
MODEL = "tiny_report"
WINDOW = 86_400
MEMBERS = [SigningKey.from_secret(keccak(f"zkml report member {i}".encode())) for i in range(3)]
AUDITOR_VRF_SK = bytes.fromhex("c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721")
EVIL = '<script>alert(1)</script>"><img src=https://evil.example/x.png onerror=alert(2)>'
CHROMIUM = "/usr/bin/chromium"
SCREENSHOT_COPY = Path("/tmp/report_screenshot.png")


@dataclass(frozen=True)
class World:
    node: Anvil
    store: Store
    chain: Chain
    registry: Registry
    mid: str
    committee: Committee
    verified: list[tuple[Path, Any]]
    """Bundles sent with verifyAndRecord, with their receipts."""
    unverified: Path
    """A real bundle of the model never sent to the chain."""
    reproof: Path
    """Another proof of the first verified bundle's input (same public instances), never sent."""
    rollback_tx: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("report")
    store = Store(root / "store")
    cal = np.random.default_rng(0).uniform(-1, 1, (16, 4)).astype(np.float32)
    circuits = []
    for seed in (0, 1):
        onnx = root / f"tiny{seed}.onnx"
        export_linear(seed, onnx)
        circuits.append(compile_model(onnx, cal, CircuitOptions(), store=store)[0])
    a, b = circuits
    node = Anvil.start(chain_id=CHAIN_ID)
    try:
        chain = connect(node.rpc_url, ANVIL_DEV_KEY)
        emergency = connect(node.rpc_url, EMERGENCY_KEY)
        deploy_circuit(a, store, chain, model_id=MODEL, emergency=emergency.sender)
        registry = ensure_existing_registry(store, chain)
        mid = "0x" + registry.model_id(MODEL).hex()
        # Proofs: two verified on chain, one not
        verified = []
        for i, x in enumerate((TEST_INPUT, OTHER_INPUT)):
            bundle = prove(a, np.asarray([x]))
            path = root / f"verified{i}.json"
            bundle.save(path)
            verified.append((path, registry.verify_and_record(mid, bundle.proofs[0].to_ezkl(bundle.ezkl_version))))
        unverified = root / "unverified.json"
        prove(a, np.asarray([[0.3, 0.3, -0.1, 0.9]])).save(unverified)
        reproof = root / "reproof.json"
        prove(a, np.asarray([TEST_INPUT])).save(reproof)
        # v2: proposed, finalized after the window
        p = propose_circuit(b, store, chain, MODEL, np.asarray([TEST_INPUT]))
        chain.increase_time(WINDOW + 1)
        registry_action(store, chain, MODEL, "finalize")
        # v3: a lying prediction, challenged with the honest test proof
        record = registry.record(mid, 2)
        registry.propose_update(mid, record, bytes.fromhex(p.test_input_commitment[2:]), commit([1, 2, 3]))
        challenge_update(store, chain, MODEL, Bundle.load(p.test_proof))
        # v4: an attacker-written metadata URI, cancelled by the owner
        registry.propose_update(mid, dataclasses.replace(record, metadata_uri=EVIL),
                                bytes.fromhex(p.test_input_commitment[2:]), bytes.fromhex(p.predicted_output_commitment[2:]))
        registry.cancel_update(mid)
        # the emergency holder pauses and unpauses
        em = Registry(emergency.at(registry.contract.abi, registry.address, "registry"))
        em.pause(mid)
        em.unpause(mid)
        # an audit of version 2
        registry.register_auditor(AUDITOR_VRF_SK)
        registry.record_audit(mid, 2, keccak(b"challenge"), keccak(b"beta"), keccak(b"report"), 10, 9, True)
        # a 2-of-3 committee rolls version 2 back (members sign offline; the owner submits)
        committee = Committee.deploy(chain, registry.address, [m.address for m in MEMBERS], 2,
                                     cache_dir=store.solc_cache, registry_abi=registry.contract.abi)
        registry.set_committee(mid, committee.address)
        receipt = execute(committee, [approve(committee, "rollback", bytes.fromhex(mid[2:]), k) for k in MEMBERS[:2]])
        yield World(node, store, chain, registry, mid, committee, verified, unverified, reproof, receipt.tx_hash)
    finally:
        node.stop()


def _report(w: World, out: Path, *args: str) -> Any:
    return runner.invoke(app, ["report", MODEL, "--html", str(out), "--rpc-url", w.node.rpc_url,
                               "--store", str(w.store.root), *args])


@pytest.fixture(scope="module")
def page(world: World, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The report with one verified and one unverified bundle: (index.html, its --json)."""
    out = tmp_path_factory.mktemp("report-html")
    r = _report(world, out, "--bundle", str(world.verified[0][0]), "--bundle", str(world.unverified),
                "--bundle", str(world.reproof), "--json")
    assert r.exit_code == 0, r.stderr + r.stdout
    doc = json.loads(r.stdout)
    assert doc["path"] == str(out / "index.html")
    return out / "index.html", doc


# What the page says


def test_json_has_the_chain_facts(world: World, page: tuple[Path, dict[str, Any]]) -> None:
    _, doc = page
    assert doc["model_id"] == world.mid and doc["chain_id"] == CHAIN_ID and doc["registry"] == world.registry.address
    assert doc["current_version"] == 1 and doc["latest_version"] == 4 and doc["paused"] is False
    versions = doc["versions"]
    assert [v["status"] for v in versions] == ["accepted", "revoked", "rejected", "cancelled"]
    assert [v["active"] for v in versions] == [True, False, False, False]
    kinds = [[o["kind"] for o in v["history"]] for v in versions]
    assert kinds == [["registered", "reactivated (rollback)"], ["proposed", "finalized", "revoked (rolled back)"],
                     ["proposed", "challenged"], ["proposed", "cancelled"]]
    assert versions[1]["window"] == WINDOW and versions[0]["deadline"] is None
    assert all(v["verifier_code_matches"] for v in versions)
    assert versions[0]["onnx_sha256"] != versions[1]["onnx_sha256"]
    assert versions[3]["metadata_uri"] == EVIL
    # every verified proof, with the gas its receipt reports
    assert [(p["tx"], p["block"], p["gas_used"]) for p in doc["proofs"]] == [
        (r.tx_hash, r.block, r.gas_used) for _, r in world.verified]
    assert doc["audits"][0]["version"] == 2 and doc["audits"][0]["sampled"] == 10 and doc["audits"][0]["passed"] is True
    assert [(e["kind"], e["via_committee"]) for e in doc["emergency"]] == [
        ("ModelPaused", False), ("ModelUnpaused", False), ("RolledBack", True)]
    (c,) = doc["committees"]
    assert c["address"] == world.committee.address and c["members"] == [m.address for m in MEMBERS]
    assert c["threshold"] == 2 and [(a["action"], a["tx"]) for a in c["actions"]] == [("rollback", world.rollback_tx)]
    # the bundles: matched by instances hash, or not verified on chain
    good, bad, again = doc["bundles"]
    assert good["proofs"][0]["onchain"]["tx"] == world.verified[0][1].tx_hash and good["proofs"][0]["same_proof"]
    # another proof of the same instances: the instances are bound, this proof was not the one recorded
    sent, other = (Bundle.load(p).proofs[0].proof_hex for p in (world.verified[0][0], world.reproof))
    assert again["proofs"][0]["onchain"]["tx"] == world.verified[0][1].tx_hash
    assert again["proofs"][0]["same_proof"] is (sent == other)
    assert bad["proofs"][0]["onchain"] is None and bad["comparison"] is None
    cmp = good["comparison"]
    assert cmp["version"] == 1 and cmp["samples"] == 1 and cmp["within"] is True
    assert 0 <= cmp["max_abs_error"] <= cmp["tolerance"] and cmp["argmax_agreement"] == 1.0


def _tags(text: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """Every start tag of the page and its attributes, as the stdlib HTML parser reads them."""
    from html.parser import HTMLParser

    found: list[tuple[str, list[tuple[str, str]]]] = []

    class Tags(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found.append((tag, [(k, v or "") for k, v in attrs]))

    parser = Tags()
    parser.feed(text)
    parser.close()
    return found


def test_html_shows_the_facts_and_loads_nothing(world: World, page: tuple[Path, dict[str, Any]]) -> None:
    path, doc = page
    text = path.read_text()
    assert world.mid in text and world.committee.address in text
    assert all(m.address in text for m in MEMBERS)
    assert all(r.tx_hash in text for _, r in world.verified) and world.rollback_tx in text
    body = text.split('class="versions"', 1)[1].split("</table>", 1)[0]
    assert body.count("<tr>") == 1 + 4  # header + one row per version
    for status in ("accepted", "revoked", "rejected", "cancelled"):
        assert status in body
    assert "not verified on chain" in text and "verified on chain</span> by version 1" in text
    assert text.count("data:image/png;base64,") == 2  # the comparison figures of the two matched bundles
    # the attacker's metadata is text, never markup
    assert EVIL not in text and "<script" not in text.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=https://evil.example" in text
    # self-contained: no external src/href, no script, no stylesheet link, no CSS import or url()
    tags = _tags(text)
    assert {t for t, _ in tags} <= {"html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h3", "p",
                                   "main", "section", "table", "thead", "tbody", "tr", "th", "td", "code", "span",
                                   "br", "img", "svg", "text", "line", "rect"}
    refs = [(t, k, v) for t, attrs in tags for k, v in attrs if k in ("src", "href", "srcset", "action", "xlink:href")]
    assert refs and all(k == "src" and v.startswith("data:image/png;base64,") for _, k, v in refs), refs
    assert not [a for _, attrs in tags for a in attrs if a[0].startswith("on")]  # no event handler attribute
    assert re.findall(r"<(?:script|link|iframe|object|embed)\b", text, re.I) == []
    assert "@import" not in text and "url(" not in text
    csp = [dict(a)["content"] for t, a in tags if t == "meta" and dict(a).get("http-equiv") == "Content-Security-Policy"]
    assert csp and csp[0].startswith("default-src 'none'; img-src data:;")  # the CSP forbids every remote load
    assert len(doc["events"]) == text.count("<tr>", text.index('id="trail"')) - 1


def test_human_summary(world: World, tmp_path: Path) -> None:
    r = _report(world, tmp_path / "out", "--bundle", str(world.unverified))
    assert r.exit_code == 0, r.stderr + r.stdout
    assert f"written to {tmp_path / 'out' / 'index.html'}" in r.stdout
    assert "versions 4 (active 1)" in r.stdout and "proofs verified 2, audits 1, committee actions 1" in r.stdout
    assert "bundles 1: 0 of 1 proof(s) verified on chain, 1 not verified on chain" in r.stdout
    assert (tmp_path / "out" / "index.html").stat().st_mode & 0o044  # readable by others (umask permitting)
    assert (tmp_path / "out" / "index.html").stat().st_size > 5_000
    assert not [p.name for p in (tmp_path / "out").iterdir() if p.name != "index.html"]  # no temp file left


# In a real browser


def _chromium() -> str:
    exe = CHROMIUM if Path(CHROMIUM).is_file() else shutil.which("chromium")
    if exe is None:
        pytest.fail("chromium not found: install Debian's chromium (apt-get install -y chromium); .ci/run does")
    return exe


def _browser(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp / 'profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_rendered_in_headless_chromium(world: World, page: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    path, _ = page
    url = path.resolve().as_uri()
    r = _browser(tmp_path, "--dump-dom", url)
    assert r.returncode == 0, r.stderr[-2000:]
    dom = r.stdout
    assert world.mid in dom and world.verified[0][1].tx_hash in dom
    rows = dom.split('class="versions"', 1)[1].split("</table>", 1)[0]
    assert rows.count("<tr>") == 5 and "revoked (rolled back)" in rows and "challenged" in rows
    assert "<script" not in dom.lower()  # the attacker's string stayed text in the parsed DOM too
    shot = tmp_path / "report.png"
    r = _browser(tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", url)
    assert r.returncode == 0 and shot.is_file(), r.stderr[-2000:]
    data = shot.read_bytes()
    assert _png_size(data) == (1280, 2000) and len(data) > 20_000
    from PIL import Image

    with Image.open(shot) as im:
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # text, tables and the header: not a blank page
    shutil.copyfile(shot, SCREENSHOT_COPY)
    assert zlib.crc32(SCREENSHOT_COPY.read_bytes()) == zlib.crc32(data)


# Bad input


def _one_line_error(r: Any, code: int, *fragments: str) -> None:
    assert r.exit_code == code, (r.exit_code, r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip() and not ln.startswith("  .. ")]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.stderr, r.stderr
    for f in fragments:
        assert f in lines[0], lines[0]


def test_bad_input_is_one_line(world: World, tmp_path: Path) -> None:
    out = tmp_path / "out"
    unknown = "0x" + "ab" * 32
    r = runner.invoke(app, ["report", unknown, "--html", str(out), "--rpc-url", world.node.rpc_url,
                            "--store", str(world.store.root)])
    _one_line_error(r, 2, "not registered")
    # a bare name this store never registered, and no key to name a namespace with
    r = runner.invoke(app, ["report", "no-such-model", "--html", str(out), "--rpc-url", world.node.rpc_url,
                            "--store", str(world.store.root)])
    _one_line_error(r, 2, "name its owner (0xOWNER/no-such-model)")
    r = runner.invoke(app, ["report", MODEL, "--html", str(out), "--rpc-url", "http://127.0.0.1:1",
                            "--store", str(world.store.root)])
    _one_line_error(r, 2, "cannot reach RPC at http://127.0.0.1:1")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    _one_line_error(_report(world, blocker / "sub"), 2, "cannot write the report to")
    _one_line_error(_report(world, out, "--bundle", str(tmp_path / "none.json")), 2, "none.json not found")
    junk = tmp_path / "junk.json"
    junk.write_text('{"format": "something else"}')
    _one_line_error(_report(world, out, "--bundle", str(junk)), 2)
    assert not (blocker / "sub").exists() and not (out / "index.html").exists()

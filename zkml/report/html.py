"""Render a :class:`~zkml.report.collect.ReportData` as one static, self-contained HTML page.

Self-contained: inline CSS, plots as inline base64 PNG (``data:`` URIs) and inline SVG; no script,
no external asset, no link to follow. A Content-Security-Policy meta tag forbids scripts and every
remote load, so even a string that escaped escaping could not run or fetch anything. Every string from
the chain or a bundle (model names, metadata URIs, addresses, event arguments) is written through
:func:`html.escape`: the metadata URI is the owner's text and is shown, never linked.
"""

from __future__ import annotations

import base64
import html
import json
import time
from collections.abc import Iterable, Sequence
from typing import Any, Final

from zkml.report.collect import BundleReport, CommitteeInfo, ReportData, VersionRow

#: No script, no remote load of any kind; images only as data: URIs; styles only inline.
CSP: Final[str] = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

_CSS: Final[str] = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;background:#f6f7f9;color:#1d2430}
header{background:#1d2430;color:#fff;padding:18px 28px}
header h1{margin:0 0 4px;font-size:20px} header p{margin:2px 0;color:#c9d1dc}
main{padding:8px 28px 40px;max-width:1400px}
section{background:#fff;border:1px solid #dde2e8;border-radius:6px;margin:16px 0;padding:12px 16px}
h2{font-size:16px;margin:4px 0 8px} h3{font-size:14px;margin:12px 0 6px}
.src{font-size:12px;color:#5b6675;margin:0 0 8px}
table{border-collapse:collapse;width:100%;font-size:12.5px}
th,td{border-bottom:1px solid #e6e9ee;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f0f2f5;font-weight:600}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;word-break:break-all}
.ok{color:#17702f;font-weight:600} .bad{color:#b3261e;font-weight:600} .warn{color:#8a5a00;font-weight:600}
.kv td:first-child{width:240px;color:#5b6675}
.tag{display:inline-block;padding:0 6px;border-radius:3px;background:#eef1f5;font-size:12px;margin:1px 2px 1px 0}
img{max-width:100%;border:1px solid #e6e9ee}
"""


class Markup(str):
    """HTML this module built from escaped parts (never from outside strings as such)."""


def esc(value: Any) -> Markup:
    """``value`` as escaped HTML text (Markup passes through)."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape("" if value is None else str(value), quote=True))


def _code(value: Any) -> Markup:
    return Markup(f"<code>{esc(value)}</code>")


def _span(cls: str, value: Any) -> Markup:
    return Markup(f'<span class="{cls}">{esc(value)}</span>')


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]], cls: str = "") -> Markup:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows)
    attr = f' class="{cls}"' if cls else ""
    return Markup(f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def _kv(pairs: Iterable[tuple[str, Any]]) -> Markup:
    body = "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in pairs)
    return Markup(f'<table class="kv"><tbody>{body}</tbody></table>')


def _section(title: str, source: str, *parts: Markup, sid: str = "") -> Markup:
    ident = f' id="{esc(sid)}"' if sid else ""
    return Markup(f"<section{ident}><h2>{esc(title)}</h2><p class=\"src\">source: {esc(source)}</p>"
                  + "".join(parts) + "</section>")


def _utc(ts: int | None) -> str:
    return "" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def _none(text: str) -> Markup:
    return Markup(f"<p>{esc(text)}</p>")


# Sections


def _versions(data: ReportData) -> Markup:
    def status(v: VersionRow) -> Markup:
        cls = {"accepted": "ok", "pending": "warn"}.get(v.status, "bad")
        return Markup(_span(cls, v.status) + (" " + _span("tag", "active") if v.active else ""))

    committees = {c.address for c in data.committees}

    def history(v: VersionRow) -> Markup:
        return Markup("<br>".join(
            f"{esc(o.kind)} @ block {esc(o.block)} {_code(o.tx)}"
            + (f" by {_code(o.by)}" + (" (committee)" if o.by in committees else "") if o.by else "")
            for o in v.history))

    def window(v: VersionRow) -> Markup:
        if v.deadline is None:
            return esc("none (version 1 takes effect at registration)")
        return Markup(f"{esc(v.window)} s, until {esc(_utc(v.deadline))}")

    rows = [(esc(v.version), status(v),
             Markup(_code(v.verifier) + "<br>code hash " + _code(v.verifier_code_hash) + " "
                    + (_span("ok", "code matches") if v.verifier_code_matches
                       else _span("bad", "CODE CHANGED: the registry refuses this verifier"))),
             _code(v.vk_digest), _code(v.onnx_sha256), _code(v.weights_commitment),
             esc(v.proposed.block if v.proposed else ""), esc(v.finalized.block if v.finalized else ""),
             window(v), history(v))
            for v in data.versions]
    table = _table(["version", "status", "verifier", "vk digest", "ONNX sha256", "weights commitment",
                    "proposed block", "finalized block", "challenge window", "history (outcome)"], rows,
                   cls="versions")
    details = "".join(
        f"<h3>version {esc(v.version)}</h3>" + _kv([
            ("dataset root", _code(v.dataset_root)),
            ("metadata URI (owner's text)", _code(v.metadata_uri)),
            ("next update's window", f"{v.next_window} s"),
            ("test input commitment", _code(v.test_input_commitment or "none (version 1)")),
            ("predicted output commitment", _code(v.predicted_output_commitment or "none (version 1)")),
        ]) for v in data.versions)
    return _section("Versions", "registry getRecord / versionStatus (getters), ModelRegistered, UpdateProposed, "
                    "UpdateFinalized, UpdateChallenged, DeferredChallenged, UpdateCancelled, RolledBack (events); "
                    "code hashes: extcodehash now", table, Markup(details), sid="versions")


def _committee(c: CommitteeInfo) -> Markup:
    head = _kv([("committee", _code(c.address)),
                ("state", "current committee" if c.current else "former committee"),
                ("threshold", f"{c.threshold} of {len(c.members)}"),
                ("members", Markup("<br>".join(_code(m) for m in c.members))),
                ("named at block", c.set_block if c.set_block is not None else "")])
    actions = (_table(["block", "action", "version", "nonce", "signers", "submitter", "new committee", "tx"],
                      [(esc(a.block), esc(a.action), esc(a.version), esc(a.nonce),
                        Markup("<br>".join(_code(s) for s in a.signers)), _code(a.submitter),
                        _code(a.new_committee or ""), _code(a.tx)) for a in c.actions])
               if c.actions else _none("no action executed"))
    return Markup(head + "<h3>actions</h3>" + actions)


def _gas_svg(data: ReportData) -> Markup:
    """Gas of each verified proof as an inline SVG bar chart."""
    if not data.proofs:
        return Markup("")
    w, h, pad = 900, 180, 40
    peak = max(p.gas_used for p in data.proofs) or 1
    n = len(data.proofs)
    bw = max(2.0, (w - 2 * pad) / n * 0.8)
    bars = []
    for i, p in enumerate(data.proofs):
        bh = (h - 2 * pad) * p.gas_used / peak
        x = pad + (w - 2 * pad) * i / n
        bars.append(f'<rect x="{x:.1f}" y="{h - pad - bh:.1f}" width="{bw:.1f}" height="{bh:.1f}" fill="#3b6fb6">'
                    f"<title>block {p.block}: {p.gas_used} gas</title></rect>")
    return Markup(
        f'<svg width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img">'
        f'<text x="{pad}" y="20" font-size="12">gas used per verified proof (max {peak:,})</text>'
        f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="#888"/>'
        + "".join(bars)
        + f'<text x="{pad}" y="{h - 18}" font-size="11">block {data.proofs[0].block}</text>'
        f'<text x="{w - pad}" y="{h - 18}" font-size="11" text-anchor="end">block {data.proofs[-1].block}</text>'
        "</svg>")


def _bundle(b: BundleReport) -> Markup:
    proofs = _table(["proof", "instances hash", "on chain"], [
        (esc(p.index), _code(p.instances_hash or "not one instance column"),
         Markup(_span("ok", "verified on chain" if p.same_proof else "instances verified on chain")
                + ("" if p.same_proof else " (by another proof of the same public instances)")
                + f" by version {esc(p.onchain.version)} at block "
                f"{esc(p.onchain.block)}, tx {_code(p.onchain.tx)}") if p.onchain is not None
         else _span("bad", "not verified on chain"))
        for p in b.proofs])
    parts = [_kv([("file (given by the user; untrusted)", _code(b.source)),
                  ("circuit the bundle names (its claim)", _code(b.claimed_circuit)),
                  ("proofs verified on chain", f"{b.verified} of {len(b.proofs)}")]), proofs]
    c = b.comparison
    if c is not None:
        verdict = _span("ok", "within tolerance") if c.within else _span("bad", "outside tolerance")
        parts.append(Markup(
            "<h3>float vs circuit (proofs verified on chain only)</h3>"
            + _kv([("version (layout used to cut the instances)", c.version),
                   ("float reference", Markup(f"onnxruntime on store circuit {_code(c.circuit_id)}, whose ONNX and vk "
                                              "digests equal the version's on-chain digests")),
                   ("samples", c.samples),
                   ("max |circuit - float|", Markup(f"{esc(f'{c.max_abs_error:.4g}')} {verdict} "
                                                    f"(tolerance {esc(f'{c.tolerance:.4g}')})")),
                   ("mean |circuit - float|", f"{c.mean_abs_error:.4g}"),
                   ("accuracy: circuit argmax = float argmax",
                    "n/a (one output)" if c.argmax_agreement is None else f"{c.argmax_agreement:.1%}")])
            + f'<img alt="float vs circuit outputs and error distribution" '
              f'src="data:image/png;base64,{base64.b64encode(c.plot_png).decode()}">'))
    if b.note:
        parts.append(_none(b.note))
    return Markup("".join(parts))


def render(data: ReportData) -> str:
    """The page."""
    active = next((v for v in data.versions if v.active), None)
    state = _kv([
        ("model id", _code(data.model_id)),
        ("owner", _code(data.owner)),
        ("active version", data.current_version),
        ("latest version", data.latest_version),
        ("paused", _span("bad", "PAUSED: verification reverts") if data.paused else _span("ok", "no")),
        ("pending update", f"version {data.pending_version}" if data.pending_version else "none"),
        ("active verifier", _code(active.verifier if active else "")),
        ("registry", _code(data.registry)),
    ])
    proofs = (_table(["block", "version", "tx", "gas used", "instances hash", "submitter"],
                     [(esc(p.block), esc(p.version), _code(p.tx), esc(f"{p.gas_used:,}"), _code(p.instances_hash),
                       _code(p.submitter)) for p in data.proofs], cls="proofs")
              if data.proofs else _none("no proof verified on chain"))
    audits = (_table(["block", "version", "auditor", "sampled", "correct", "verdict", "challenge digest", "beta",
                      "report digest", "tx"],
                     [(esc(a.block), esc(a.version), _code(a.auditor), esc(a.sampled), esc(a.correct),
                       _span("ok", "passed") if a.passed else _span("bad", "failed"), _code(a.challenge_digest),
                       _code(a.beta), _code(a.report_digest), _code(a.tx)) for a in data.audits])
              if data.audits else _none("no audit recorded"))
    emergency = (_table(["block", "action", "by", "detail", "tx"],
                        [(esc(e.block), esc(e.kind),
                          Markup(_code(e.by) + (" (committee)" if e.via_committee else "")), esc(e.detail),
                          _code(e.tx)) for e in data.emergency])
                 if data.emergency else _none("no pause, unpause or rollback"))
    committees = (Markup("".join(_committee(c) for c in data.committees)) if data.committees
                  else _none("no committee: emergency actions are the registry's emergency role's alone"))
    trail = _table(["block", "log", "event", "tx", "arguments"],
                   [(esc(e.block), esc(e.log_index), esc(e.name), _code(e.tx),
                     _code(json.dumps(e.args, sort_keys=True, default=str))) for e in data.events])
    sections = [
        _section("Current state", f"registry getModel at block {data.block}", state, sid="state"),
        _versions(data),
        _section("Committee", "registry committeeOf + CommitteeSet (events); committee members / threshold "
                 "(getters), CommitteeActionExecuted (events)", committees, sid="committee"),
        _section(f"Proofs verified on chain ({len(data.proofs)})", "ProofVerified (events); gas: transaction receipts",
                 _gas_svg(data), proofs, sid="proofs"),
        _section(f"Audits ({len(data.audits)})", "AuditRecorded (events)", audits, sid="audits"),
        _section("Pauses, unpauses and rollbacks", "ModelPaused, ModelUnpaused, RolledBack (events)", emergency,
                 sid="emergency"),
    ]
    if data.bundles:
        sections.append(_section(
            f"Proof bundles ({len(data.bundles)})",
            "files given by the user (untrusted); a proof counts only when its instances hash equals a "
            "ProofVerified event's; inputs and outputs are cut from those instances with the registered layout",
            Markup("".join(f"<h3>bundle {i + 1}</h3>" + _bundle(b) for i, b in enumerate(data.bundles))),
            sid="bundles"))
    sections.append(_section(f"Event trail ({len(data.events)} events)", "every registry event of the model", trail,
                             sid="trail"))
    title = f"zkml report: model {data.model_id}"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">'
            f'<meta name="referrer" content="no-referrer"><title>{esc(title)}</title><style>{_CSS}</style></head>'
            f"<body><header><h1>{esc(title)}</h1>"
            f"<p>chain {esc(data.chain_id)} via {_code(data.rpc_url)}, registry {_code(data.registry)}</p>"
            f"<p>read at block {esc(data.block)} ({esc(_utc(data.block_timestamp))}, block time). Every value "
            "below comes from the chain unless its section says otherwise. No weights, inputs or keys are shown.</p>"
            f"</header><main>{''.join(sections)}</main></body></html>\n")

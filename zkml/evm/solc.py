"""Compile Solidity with the pinned solc-js from ``node_modules``.

Why solc-js through ``node``: it is pinned in ``package-lock.json`` next to
anvil and OpenZeppelin, so a compile never downloads a compiler at run time
(ezkl's own path goes through ``svm`` and the network). We drive it with the
standard JSON interface: one small inline node script reads
``{"input": <standard JSON>, "roots": [...]}`` on stdin, compiles with an
import callback confined to ``roots`` (the source's directory and
``node_modules``, so ``@openzeppelin/...`` resolves), and prints the output.

solc-js is slow on big generated verifiers, so results can be cached by the
sha256 of (sources, settings, compiler version); a cache entry also records
the sha256 of every imported file and is ignored when one of them changed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from zkml.errors import ConfigError, ToolError
from zkml.util import canonical_json, read_json, sha256_bytes, sha256_file, write_json_atomic

#: evmVersion values we accept. "paris" is the newest without PUSH0 (for older chains).
EVM_VERSIONS: Final[tuple[str, ...]] = ("london", "paris", "shanghai", "cancun", "prague")
DEFAULT_EVM_VERSION: Final[str] = "cancun"
#: Env var that points at the ``node_modules`` directory holding solc, anvil, OpenZeppelin.
NODE_MODULES_ENV: Final[str] = "ZKML_NODE_MODULES"
#: Seconds a single compile may take before we give up (big verifiers take tens of seconds).
COMPILE_TIMEOUT_S: Final[float] = 900.0

_NPM_HINT = "run `npm ci` in the zkml checkout (or set ZKML_NODE_MODULES)"

# The node side: read a request on stdin, compile, print the standard JSON output
# plus the files the import callback served. Imports may only come from `roots`.
_NODE_SCRIPT = r"""
const fs = require('fs');
const path = require('path');
let raw = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (c) => { raw += c; });
process.stdin.on('end', () => {
  const req = JSON.parse(raw);
  const solc = require(path.join(req.nodeModules, 'solc'));
  const served = {};
  const roots = req.roots.map((r) => path.resolve(r));
  function findImports(unit) {
    for (const root of roots) {
      const candidate = path.resolve(root, unit);
      if (!candidate.startsWith(root + path.sep)) continue;
      if (fs.existsSync(candidate) && fs.statSync(candidate).isFile()) {
        served[unit] = candidate;
        return { contents: fs.readFileSync(candidate, 'utf8') };
      }
    }
    return { error: 'File not found: ' + unit };
  }
  const out = JSON.parse(solc.compile(JSON.stringify(req.input), { import: findImports }));
  process.stdout.write(JSON.stringify({ version: solc.version(), output: out, served: served }));
});
"""


class SolcError(ToolError):
    """solc rejected the sources; carries the first error message."""

    def __init__(self, message: str, errors: list[str] | None = None):
        super().__init__(message)
        self.errors: Final[list[str]] = errors or []


@dataclass(frozen=True)
class CompiledContract:
    """One contract out of a solc compile, ready to deploy."""

    name: str
    """Contract name as declared in the source."""
    abi: list[dict[str, Any]] = field(compare=False)
    """The contract ABI (JSON objects as solc emits them)."""
    bytecode: bytes = field(repr=False)
    """Creation (init) code, without constructor arguments."""
    deployed_bytecode: bytes = field(repr=False)
    """Runtime code as it will sit at the address: what EIP-170 limits."""
    deployed_size: int
    """``len(deployed_bytecode)`` in bytes."""
    solc_version: str
    """Full compiler version string, e.g. ``0.8.37+commit.f401782d.Emscripten.clang``."""
    evm_version: str
    """Target EVM version the code was compiled for."""
    optimizer_runs: int = 200
    """Optimizer ``runs`` setting used."""

    @property
    def initcode_size(self) -> int:
        """Size of the creation code (EIP-3860 limits it to 49,152 bytes)."""
        return len(self.bytecode)

    def to_json(self) -> dict[str, Any]:
        """Serializable form (hex bytecode), the inverse of :meth:`from_json`."""
        return {
            "name": self.name,
            "abi": self.abi,
            "bytecode": "0x" + self.bytecode.hex(),
            "deployed_bytecode": "0x" + self.deployed_bytecode.hex(),
            "solc_version": self.solc_version,
            "evm_version": self.evm_version,
            "optimizer_runs": self.optimizer_runs,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CompiledContract:
        """Rebuild from :meth:`to_json` output."""
        deployed = bytes.fromhex(str(data["deployed_bytecode"]).removeprefix("0x"))
        return cls(
            name=str(data["name"]),
            abi=list(data["abi"]),
            bytecode=bytes.fromhex(str(data["bytecode"]).removeprefix("0x")),
            deployed_bytecode=deployed,
            deployed_size=len(deployed),
            solc_version=str(data["solc_version"]),
            evm_version=str(data["evm_version"]),
            optimizer_runs=int(data.get("optimizer_runs", 200)),
        )


# Locating the pinned tools


def find_node_modules(start: str | os.PathLike[str] | None = None) -> Path:
    """Return the ``node_modules`` directory that holds the pinned solc-js.

    Order: ``$ZKML_NODE_MODULES``; then upward from ``start`` (default: cwd);
    then upward from this package's directory (an editable checkout).

    Raises:
        ToolError: no ``node_modules/solc`` found (tells the user to run ``npm ci``).
    """
    env = os.environ.get(NODE_MODULES_ENV)
    if env:
        p = Path(env).expanduser().resolve()
        if (p / "solc" / "package.json").is_file():
            return p
        raise ToolError(f"{NODE_MODULES_ENV}={env} has no solc in it: {_NPM_HINT}")
    starts = [Path(start) if start is not None else Path.cwd(), Path(__file__).resolve().parent]
    for base in starts:
        for d in [base.resolve(), *base.resolve().parents]:
            candidate = d / "node_modules"
            if (candidate / "solc" / "package.json").is_file():
                return candidate
    raise ToolError(f"solc-js not found in any node_modules: {_NPM_HINT}")


def find_node() -> str:
    """Path of the ``node`` executable.

    Raises:
        ToolError: node is not on PATH.
    """
    node = shutil.which("node")
    if node is None:
        raise ToolError(f"node not found: install Node.js >= 20, then {_NPM_HINT}")
    return node


def solc_package_version(node_modules: Path) -> str:
    """The pinned solc-js version from its ``package.json`` (no node start needed).

    Raises:
        ToolError: the package.json is missing or unreadable.
    """
    try:
        return str(read_json(node_modules / "solc" / "package.json")["version"])
    except (OSError, ValueError, KeyError) as e:
        raise ToolError(f"solc-js in {node_modules} is broken ({e}): {_NPM_HINT}") from e


# Compiling


def _settings(evm_version: str, optimizer_runs: int) -> dict[str, Any]:
    if evm_version not in EVM_VERSIONS:
        raise ConfigError(f"unknown evm version {evm_version!r}: choose one of {', '.join(EVM_VERSIONS)}")
    if optimizer_runs < 1:
        raise ConfigError(f"optimizer runs must be >= 1, got {optimizer_runs}")
    return {
        "optimizer": {"enabled": True, "runs": optimizer_runs},
        "evmVersion": evm_version,
        "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
    }


def _cache_lookup(cache_file: Path) -> dict[str, Any] | None:
    """A cache entry if it exists, parses, and every imported file is unchanged."""
    try:
        entry = read_json(cache_file)
        for path, digest in entry["served"].items():
            if not Path(path).is_file() or sha256_file(path) != digest:
                return None
        return entry  # type: ignore[no-any-return]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _run_solc(node_modules: Path, std_input: dict[str, Any], roots: list[Path]) -> dict[str, Any]:
    from zkml.keys import child_env

    node = find_node()
    request = {"input": std_input, "roots": [str(r) for r in roots], "nodeModules": str(node_modules)}
    try:
        proc = subprocess.run(
            [node, "-e", _NODE_SCRIPT],
            input=json.dumps(request).encode(),
            capture_output=True,
            timeout=COMPILE_TIMEOUT_S,
            check=False,
            env=child_env({"NODE_OPTIONS": "--max-old-space-size=4096"}),  # no secret reaches node
        )
    except subprocess.TimeoutExpired as e:
        raise ToolError(f"solc-js did not finish within {COMPILE_TIMEOUT_S:.0f}s") from e
    except OSError as e:
        raise ToolError(f"cannot run node ({e}): install Node.js >= 20") from e
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()
        detail = tail[-1] if tail else f"exit code {proc.returncode}"
        if "Cannot find module" in proc.stderr.decode(errors="replace"):
            raise ToolError(f"solc-js could not be loaded ({detail}): {_NPM_HINT}")
        raise ToolError(f"solc-js failed: {detail}")
    try:
        return json.loads(proc.stdout)  # type: ignore[no-any-return]
    except ValueError as e:
        raise ToolError(f"solc-js printed unparsable output ({e})") from e


def _contract_from_output(
    unit: str, name: str, data: Mapping[str, Any], solc_version: str, evm_version: str, runs: int
) -> CompiledContract:
    evm = data["evm"]
    creation = str(evm["bytecode"]["object"])
    runtime = str(evm["deployedBytecode"]["object"])
    if "__$" in creation:
        raise SolcError(f"{unit}:{name} needs library linking, which zkml does not do")
    deployed = bytes.fromhex(runtime)
    return CompiledContract(
        name=name,
        abi=list(data["abi"]),
        bytecode=bytes.fromhex(creation),
        deployed_bytecode=deployed,
        deployed_size=len(deployed),
        solc_version=solc_version,
        evm_version=evm_version,
        optimizer_runs=runs,
    )


@dataclass(frozen=True)
class CompileResult:
    """Every contract of one compile, plus how long it took."""

    contracts: dict[str, CompiledContract] = field(compare=False)
    """Contract name -> compiled contract (names are unique across our sources)."""
    seconds: float
    """Wall time of the compile (near zero on a cache hit)."""
    cached: bool
    """Whether the result came from the compile cache."""


def compile_sources(
    sources: Mapping[str, str],
    *,
    evm_version: str = DEFAULT_EVM_VERSION,
    optimizer_runs: int = 200,
    import_roots: list[str | os.PathLike[str]] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    node_modules: str | os.PathLike[str] | None = None,
) -> CompileResult:
    """Compile Solidity ``sources`` (unit name -> source text) with solc-js.

    Imports are served from ``import_roots`` and then ``node_modules``. With
    ``cache_dir``, a previous identical compile is reused.

    Raises:
        ConfigError: unknown ``evm_version`` or bad ``optimizer_runs``.
        ToolError: node or solc-js is missing or crashed.
        SolcError: the sources do not compile (message = first error).
    """
    settings = _settings(evm_version, optimizer_runs)
    nm = Path(node_modules).resolve() if node_modules is not None else find_node_modules()
    version = solc_package_version(nm)
    std_input = {
        "language": "Solidity",
        "sources": {unit: {"content": text} for unit, text in sources.items()},
        "settings": settings,
    }
    key = sha256_bytes(canonical_json({"input": std_input, "solc": version}))
    cache_file = Path(cache_dir) / f"solc-{key}.json" if cache_dir is not None else None

    started = time.monotonic()
    entry = _cache_lookup(cache_file) if cache_file is not None else None
    cached = entry is not None
    if entry is None:
        roots = [Path(r).resolve() for r in (import_roots or [])] + [nm]
        result = _run_solc(nm, std_input, roots)
        output = result.get("output", {})
        errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
        if errors:
            msgs = [str(e.get("formattedMessage") or e.get("message", "")).strip() for e in errors]
            first = msgs[0].splitlines()
            head = first[0]
            where = next((ln.strip() for ln in first[1:] if ln.strip().startswith("-->")), "")
            raise SolcError(f"solc: {head}" + (f" ({where.removeprefix('--> ').rstrip(':')})" if where else ""), msgs)
        entry = {
            "solc_version": result["version"],
            "contracts": output.get("contracts", {}),
            "served": {p: sha256_file(p) for p in result.get("served", {}).values()},
        }
        if cache_file is not None:
            write_json_atomic(cache_file, entry, indent=None)

    contracts: dict[str, CompiledContract] = {}
    for unit, by_name in entry["contracts"].items():
        for name, data in by_name.items():
            contracts[name] = _contract_from_output(
                unit, name, data, str(entry["solc_version"]), evm_version, optimizer_runs
            )
    return CompileResult(contracts=contracts, seconds=time.monotonic() - started, cached=cached)


def compile_file(
    path: str | os.PathLike[str],
    contract_name: str,
    *,
    evm_version: str = DEFAULT_EVM_VERSION,
    optimizer_runs: int = 200,
    cache_dir: str | os.PathLike[str] | None = None,
    node_modules: str | os.PathLike[str] | None = None,
) -> CompiledContract:
    """Compile one ``.sol`` file and return ``contract_name`` from it.

    Relative imports resolve against the file's directory; ``@openzeppelin/...``
    from ``node_modules``.

    Raises:
        ConfigError: the file is missing or the contract is not in it.
        ToolError / SolcError: as :func:`compile_sources`.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read Solidity source {p}: {e.strerror or e}") from e
    result = compile_sources(
        {p.name: text},
        evm_version=evm_version,
        optimizer_runs=optimizer_runs,
        import_roots=[p.resolve().parent],
        cache_dir=cache_dir,
        node_modules=node_modules,
    )
    if contract_name not in result.contracts:
        found = ", ".join(sorted(result.contracts)) or "none"
        raise ConfigError(f"contract {contract_name} not found in {p} (found: {found})")
    return result.contracts[contract_name]

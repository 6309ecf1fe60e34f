"""One error hierarchy for zkml.

Every failure a user can cause (bad model, bad input, tampered proof, dead
RPC, missing tool) is raised as a subclass of :class:`ZkmlError` carrying a
one-line message. The CLI maps these to a single stderr line and an exit code;
anything else is a bug and shows a traceback only with ``ZKML_DEBUG=1``.
"""

from __future__ import annotations

from typing import Final


class ZkmlError(Exception):
    """Base class of every error zkml raises on purpose."""

    exit_code: int = 2

    def __init__(self, message: str):
        super().__init__(message)
        self.message: Final[str] = message

    def __str__(self) -> str:
        return self.message


class ConfigError(ZkmlError):
    """A flag, recipe or config file is malformed or inconsistent."""


class ToolError(ZkmlError):
    """An external tool (node, npm package, anvil, solc) is missing or failed."""


class ModelError(ZkmlError):
    """The ONNX model is unreadable, invalid, or uses unsupported operators."""


class UnsupportedOpsError(ModelError):
    """ezkl cannot put the graph in a circuit: the nodes, op types and reason it gave."""

    def __init__(self, nodes: list[tuple[str, str]], reason: str | None = None, suggestion: str | None = None):
        listed = ", ".join(f"{name} ({op})" for name, op in nodes[:10])
        more = f" and {len(nodes) - 10} more" if len(nodes) > 10 else ""
        head = f"unsupported ONNX ops: {listed}{more}" if nodes else "ezkl cannot lay out this graph"
        tail = f": {reason}" if reason else ""
        hint = f"; try: {suggestion}" if suggestion else ""
        super().__init__(f"{head}{tail}{hint}")
        self.nodes: Final[list[tuple[str, str]]] = nodes
        self.reason: Final[str | None] = reason
        self.suggestion: Final[str | None] = suggestion


class ResourceError(ZkmlError):
    """The circuit would need more memory or time than allowed on this machine."""


class InputError(ZkmlError):
    """An input file is missing, malformed, the wrong shape, or not finite."""


class CircuitError(ZkmlError):
    """Settings, calibration, compilation or key generation failed."""


class SRSError(CircuitError):
    """The structured reference string is missing, too small or corrupt."""


class StoreError(ZkmlError):
    """The artifact store is corrupt or cannot be written."""


class ProofError(ZkmlError):
    """Witness generation or proving failed."""


class ProveTimeout(ProofError):
    """Proving did not finish within the time limit."""

    def __init__(self, seconds: float):
        super().__init__(f"proving timed out after {seconds:.0f}s (raise it with --timeout)")
        self.seconds: Final[float] = seconds


class BundleError(ZkmlError):
    """A proof bundle is malformed or of an unknown format version."""


class VerificationError(ZkmlError):
    """A proof or bundle does not verify. Exit code 1: a verdict, not a crash."""

    exit_code = 1


class ChainError(ZkmlError):
    """RPC, transaction or contract failure on an EVM chain."""


def first_failure(failures: list[str], what: str) -> VerificationError:
    """One line for a failed verdict: ``what: <first failure> (and N more)`` (exit 1)."""
    more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
    return VerificationError(f"{what}: {failures[0] if failures else 'a check did not run'}{more}")

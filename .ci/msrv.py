"""The declared rust-version is at least the newest one the locked dependencies need.

Reads `cargo metadata --locked --format-version 1` on stdin; exits non-zero, saying what to raise,
when Cargo.toml declares less.
"""
import json
import sys


def version(text):
    """`1.88` and `1.88.0` are one version."""
    parts = [int(part) for part in text.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def dotted(parts):
    return ".".join(str(part) for part in parts)


meta = json.load(sys.stdin)
ours = [p for p in meta["packages"] if p["id"] in meta["workspace_members"]][0]
declared = ours["rust_version"]
needed, name, at = max(
    (version(p["rust_version"]), p["name"], p["version"])
    for p in meta["packages"]
    if p.get("rust_version") and p["id"] not in meta["workspace_members"]
)
print(f"declared {declared}; the locked dependencies need {dotted(needed)} ({name} {at})")
if version(declared) < needed:
    sys.exit(f"Cargo.toml says rust-version = {declared!r}, but {name} {at} needs {dotted(needed)}: raise it")

"""A kubeconfig for a plain-HTTP server on loopback (the replay server)."""

from __future__ import annotations

from pathlib import Path


def write_http_kubeconfig(path: Path, port: int) -> Path:
    path.write_text(
        "apiVersion: v1\n"
        "kind: Config\n"
        "clusters:\n"
        "- name: replay\n"
        f"  cluster: {{server: 'http://127.0.0.1:{port}'}}\n"
        "users:\n"
        "- name: anonymous\n"
        "  user: {}\n"
        "contexts:\n"
        "- name: replay\n"
        "  context: {cluster: replay, user: anonymous}\n"
        "current-context: replay\n"
    )
    return path

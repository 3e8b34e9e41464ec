"""This checkout's Ansible collection, thinjail.jails (deploy/ansible), as Ansible finds it."""

from __future__ import annotations

from pathlib import Path

from tests.support.host import REPO

COLLECTION = REPO / "deploy" / "ansible"


def collections_path(work: Path) -> Path:
    """A collections path that holds this checkout's collection, as `ansible-galaxy
    collection install` lays one out (linked, so the role finds the checkout it is in)."""
    path = work / "collections"
    link = path / "ansible_collections" / "thinjail" / "jails"
    if not link.is_symlink():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(COLLECTION)
    return path

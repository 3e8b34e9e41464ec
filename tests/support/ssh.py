"""Real SSH for the fleet tests: an sshd on 127.0.0.1 that the stand-in jail hosts are reached
through as an ordinary user with sudo (as FreeBSD's sshd refuses root), and a controller user
with no sudo at all, so any controller-side task that tried to become root would fail.

Both users are made once per machine (useradd, a sudoers.d file for the host user); the
controller user is let through the directories above this checkout's Python (an ACL, only
the x bit) where those are closed to others, as /root is."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.host import REPO

HOST_USER = "thinjail-ops"  # the SSH user on the jail hosts, with sudo
CONTROLLER_USER = "thinjail-ctl"  # who runs ansible-playbook, with no sudo
SUDOERS = Path("/etc/sudoers.d/thinjail-tests")


@dataclass(frozen=True)
class SshServer:
    port: int
    key: Path  # the controller user's private key, authorized for HOST_USER
    work: Path  # a directory the controller user owns

    def host_vars(self) -> dict[str, object]:
        """Inventory settings that reach a jail host as HOST_USER, becoming root with sudo."""
        return {"ansible_connection": "ssh", "ansible_host": "127.0.0.1",
                "ansible_port": self.port, "ansible_user": HOST_USER,
                "ansible_ssh_private_key_file": str(self.key),
                "ansible_ssh_common_args": "-o StrictHostKeyChecking=no "
                                           "-o UserKnownHostsFile=/dev/null"}


def _user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", name], check=True)
        # Not locked ("!"), or sshd refuses the key without PAM; no password either.
        subprocess.run(["usermod", "-p", "*", name], check=True)
        return pwd.getpwnam(name)


def _let_through(user: str, path: Path) -> None:
    """The user may traverse every directory above path (x only, by ACL)."""
    for parent in reversed(path.parents):
        if not os.stat(parent).st_mode & 0o001:
            subprocess.run(["setfacl", "-m", f"u:{user}:x", str(parent)], check=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def ssh_server() -> Iterator[SshServer]:
    host_user = _user(HOST_USER)
    ctl = _user(CONTROLLER_USER)
    SUDOERS.write_text(f"{HOST_USER} ALL=(ALL) NOPASSWD: ALL\n")
    SUDOERS.chmod(0o440)
    for path in (Path(sys.executable).resolve(), REPO):
        _let_through(CONTROLLER_USER, path)
    work = Path(tempfile.mkdtemp(prefix="thinjail-ssh-"))
    os.chmod(work, 0o755)
    try:
        home = work / "controller"
        home.mkdir()
        key = home / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                       check=True)
        authorized = work / "authorized_keys"
        shutil.copy(key.with_suffix(".pub"), authorized)
        os.chmod(authorized, 0o644)
        subprocess.run(["chown", "-R", f"{ctl.pw_uid}:{ctl.pw_gid}", str(home)], check=True)
        host_key = work / "host_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)],
                       check=True)
        port = _free_port()
        config = work / "sshd_config"
        config.write_text(f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n"
                          f"PidFile {work / 'sshd.pid'}\nAuthorizedKeysFile {authorized}\n"
                          f"AllowUsers {HOST_USER}\nPasswordAuthentication no\n"
                          "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
                          "PermitRootLogin no\nMaxSessions 50\nMaxStartups 50\n")
        Path("/run/sshd").mkdir(exist_ok=True)
        sshd = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(config)],
                                stderr=(work / "sshd.log").open("w"))
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        break
                time.sleep(0.1)
            assert host_user.pw_uid != 0
            yield SshServer(port=port, key=key, work=home)
        finally:
            sshd.terminate()
            sshd.wait(timeout=10)
    finally:
        shutil.rmtree(work, ignore_errors=True)

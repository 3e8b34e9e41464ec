"""Ansible connection: a jail on a FreeBSD jail host, entered with jexec(8) over the host's
SSH connection."""

from __future__ import annotations

DOCUMENTATION = r"""
name: jexec
short_description: Run commands in a jail of a FreeBSD jail host, through SSH and jexec
version_added: "0.2.0"
author:
  - thinjail developers (@thinjail)
description:
  - Connects to the jail host with the C(ansible.builtin.ssh) connection and runs every
    command as C(jexec <jail> /bin/sh -c <command>), as root in the jail. Files are copied
    through the same command's standard input and output, so nothing on the host is written
    and no link inside the jail is followed from the host.
  - The jail's inventory entry carries the host's SSH settings (address, port, user, key);
    the playbook C(thinjail.jails.jail_packages) adds each running jail this way.
  - Do not set C(become) for the jail; to become root on the host for jexec, set
    O(jexec_prefix), for instance to C(sudo -n).
  - Modules need a Python in the jail; C(ansible.builtin.raw) needs none.
options:
  jail:
    description: The jail's name or jid on the host.
    type: str
    required: true
    vars:
      - name: thinjail_jail
  jexec:
    description: The jexec command on the host.
    type: str
    default: /usr/sbin/jexec
    vars:
      - name: thinjail_jexec
  jexec_prefix:
    description: What runs jexec as root on the host, such as C([sudo, -n]); empty when
      the SSH user is root.
    type: list
    elements: str
    default: []
    vars:
      - name: thinjail_jexec_prefix
  host:
    description: The jail host's address.
    type: str
    default: inventory_hostname
    vars:
      - name: inventory_hostname
      - name: ansible_host
      - name: ansible_ssh_host
  port:
    description: The jail host's SSH port.
    type: int
    vars:
      - name: ansible_port
      - name: ansible_ssh_port
  remote_user:
    description: The SSH user on the jail host.
    type: str
    vars:
      - name: ansible_user
      - name: ansible_ssh_user
  private_key_file:
    description: The SSH key for the jail host.
    type: path
    vars:
      - name: ansible_private_key_file
      - name: ansible_ssh_private_key_file
  ssh_common_args:
    description: Extra arguments for ssh, as C(ansible.builtin.ssh) takes them.
    type: str
    vars:
      - name: ansible_ssh_common_args
"""

import shlex
from typing import Any

from ansible.errors import AnsibleConnectionFailure
from ansible.plugins.connection import ConnectionBase
from ansible.plugins.loader import connection_loader


class Connection(ConnectionBase):
    """A jail, through the jail host's SSH connection."""

    transport = "thinjail.jails.jexec"
    has_pipelining = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._host_connection = connection_loader.get("ansible.builtin.ssh", *args, **kwargs)

    def set_options(self, task_keys: Any = None, var_options: Any = None,
                    direct: Any = None) -> None:
        super().set_options(task_keys=task_keys, var_options=var_options, direct=direct)
        # The host's SSH settings are this plugin's vars too; ssh takes them from there.
        self._host_connection.set_options(task_keys=task_keys, var_options=var_options,
                                          direct=direct)

    def _connect(self) -> Connection:
        if not self._connected:
            self._host_connection._connect()
            self._connected = True
        return self

    def _in_jail(self, command: str) -> str:
        argv = [*self.get_option("jexec_prefix"), self.get_option("jexec"),
                self.get_option("jail"), "/bin/sh", "-c", command]
        return shlex.join(argv)

    def exec_command(self, cmd: str, in_data: bytes | None = None,
                     sudoable: bool = True) -> tuple[int, bytes, bytes]:
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        return self._host_connection.exec_command(self._in_jail(cmd), in_data=in_data,
                                                  sudoable=False)

    def put_file(self, in_path: str, out_path: str) -> None:
        super().put_file(in_path, out_path)
        with open(in_path, "rb") as f:
            data = f.read()
        rc, _stdout, err = self._host_connection.exec_command(
            self._in_jail(f"cat > {shlex.quote(out_path)}"), in_data=data, sudoable=False)
        if rc != 0:
            raise AnsibleConnectionFailure(f"could not write {out_path} in the jail: "
                                           f"{err.decode(errors='replace').strip()}")

    def fetch_file(self, in_path: str, out_path: str) -> None:
        super().fetch_file(in_path, out_path)
        rc, out, err = self._host_connection.exec_command(
            self._in_jail(f"cat {shlex.quote(in_path)}"), sudoable=False)
        if rc != 0:
            raise AnsibleConnectionFailure(f"could not read {in_path} in the jail: "
                                           f"{err.decode(errors='replace').strip()}")
        with open(out_path, "wb") as f:
            f.write(out)

    def reset(self) -> None:
        self._host_connection.reset()

    def close(self) -> None:
        self._host_connection.close()
        self._connected = False

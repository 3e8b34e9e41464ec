"""Parameter names jail(8) accepts, by FreeBSD version (jail(8), "Jail Parameters"): the
kernel's core and module parameters and jail(8)'s pseudo-parameters. `meta` and `env` are
new in 14.4 (and 15.0), `zfs.dataset` and `zfs.mount_snapshot` in 15.0. The fake jail(8)
refuses any other name, as the real one does ("unknown parameter")."""

CORE = {
    "jid", "name", "path", "ip4.addr", "ip4.saddrsel", "ip4.nosaddrsel", "ip4", "ip6.addr",
    "ip6.saddrsel", "ip6.nosaddrsel", "ip6", "vnet", "host.hostname", "host.domainname",
    "host.hostuuid", "host.hostid", "host", "securelevel", "devfs_ruleset", "children.max",
    "children.cur", "enforce_statfs", "persist", "cpuset.id", "dying", "parent", "osrelease",
    "osreldate",
}
ALLOW = {
    "allow.set_hostname", "allow.sysvipc", "allow.raw_sockets", "allow.chflags",
    "allow.mount", "allow.mount.devfs", "allow.quotas", "allow.read_msgbuf",
    "allow.socket_af", "allow.mlock", "allow.nfsd", "allow.reserved_ports",
    "allow.unprivileged_proc_debug", "allow.suser", "allow.extattr", "allow.adjtime",
    "allow.settime", "allow.routing", "allow.mount.fdescfs", "allow.mount.fusefs",
    "allow.mount.nullfs", "allow.mount.procfs", "allow.mount.linprocfs",
    "allow.mount.linsysfs", "allow.mount.tmpfs", "allow.mount.zfs", "allow.vmm",
}
MODULES = {"linux", "linux.osname", "linux.osrelease", "linux.oss_version", "sysvmsg",
           "sysvsem", "sysvshm"}
PSEUDO = {
    "exec.prepare", "exec.prestart", "exec.created", "exec.start", "command",
    "exec.poststart", "exec.prestop", "exec.stop", "exec.poststop", "exec.release",
    "exec.clean", "exec.jail_user", "exec.system_jail_user", "exec.system_user",
    "exec.timeout", "exec.consolelog", "exec.fib", "stop.timeout", "interface",
    "vnet.interface", "ip_hostname", "mount", "mount.fstab", "mount.devfs", "mount.fdescfs",
    "mount.procfs", "allow.dying", "depend",
}
JAIL8_PARAMETERS_14 = CORE | ALLOW | MODULES | PSEUDO
JAIL8_PARAMETERS = {
    "14.4": JAIL8_PARAMETERS_14 | {"meta", "env"},
    "15.1": JAIL8_PARAMETERS_14 | {"meta", "env", "zfs.dataset", "zfs.mount_snapshot"},
}


def unknown_parameters(names: set[str], version: str = "14.4") -> set[str]:
    """Names that are neither jail(8) parameters of that FreeBSD version nor `$variables`
    (booleans may carry a `no` prefix)."""
    known = JAIL8_PARAMETERS[version]
    return {n for n in names if not n.startswith("$")
            and n not in known and n.replace(".no", ".", 1) not in known
            and n.removeprefix("no") not in known}

"""Parameter names jail(8) accepts on FreeBSD 14 (jail(8), "Jail Parameters"): the kernel's
core and module parameters and jail(8)'s pseudo-parameters. `meta`/`env` (14.4+) and
`zfs.*` (15.0) are deliberately absent: thinjail must not use them on 14."""

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


def unknown_parameters(names: set[str]) -> set[str]:
    """Names that are neither jail(8) parameters nor `$variables` (booleans may carry a
    `no` prefix)."""
    return {n for n in names if not n.startswith("$")
            and n not in JAIL8_PARAMETERS_14 and n.replace(".no", ".", 1) not in
            JAIL8_PARAMETERS_14 and n.removeprefix("no") not in JAIL8_PARAMETERS_14}

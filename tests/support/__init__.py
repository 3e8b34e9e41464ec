"""Test support: a real ZFS pool on zfs-fuse, a synthetic FreeBSD mirror, a doit driver."""

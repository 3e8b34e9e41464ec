"""Named step inputs: the stamps stay those thinjail wrote before inputs had names (so an
upgrade rebuilds nothing), and a changed input is named."""

from __future__ import annotations

from pathlib import Path

from tasks.config import load_config
from tasks.inputs import InputsRecord, digest
from tasks.plan import ReleasePlan
from tasks.steps.provision import ProvisionInputs


def plan(tmp_path: Path, timezone: str) -> ReleasePlan:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 192.168.7.1\n")
    path = tmp_path / "config.yaml"
    path.write_text(f"release: 15.1-RELEASE\nzfs: {{root: zdata/jails}}\ntimezone: {timezone}\n"
                    f"resolv_conf: {resolv}\nnetwork: {{bridge: igc0bridge, subnet: "
                    "192.168.7.0/24, gateway: 192.168.7.101}\njails: {pg-1: {id: 111}}\n")
    return ReleasePlan(load_config(path), "15.1-RELEASE")


def test_stamps_are_those_of_earlier_versions(tmp_path: Path) -> None:
    """As a 15.1-RELEASE amd64 host built by thinjail before December 2026 carries them."""
    release = plan(tmp_path, "Asia/Shanghai")
    assert release.extract.stamp == "144077c654156934"
    assert release.split.stamp == "3815b6edbb6ecc3e"
    assert release.certs.stamp == "cf0fe38ed6e2aada"
    assert release.tzdns.stamp == "5b8d1200177460a9"
    assert release.snapshot() == "zdata/jails/templates/15.1-RELEASE-skeleton@base-8f62cd9762"
    wanted = ProvisionInputs(container="zdata/jails/containers/pg-1", name="pg-1",
                             packages=("postgresql16-server",), services=("postgresql",))
    assert wanted.stamp == digest("provision", ["postgresql16-server"], ["postgresql"])


def test_a_changed_input_is_named(tmp_path: Path) -> None:
    record = InputsRecord(tmp_path / "inputs")
    before = plan(tmp_path, "Asia/Shanghai").tzdns
    record.save(before)
    after = plan(tmp_path, "UTC").tzdns
    assert after.stamp != before.stamp
    assert record.changes(before.stamp, after) == (
        "timezone: Asia/Shanghai -> UTC; zone_file: Asia/Shanghai -> UTC")
    assert record.changes(None, after) == "not made yet"
    assert "its inputs not recorded" in record.changes("0123456789abcdef", after)
    packages = ProvisionInputs(container="zdata/jails/containers/pg-1", name="pg-1",
                               packages=("postgresql16-server",), services=())
    record.save(packages)
    more = ProvisionInputs(container="zdata/jails/containers/pg-1", name="pg-1",
                           packages=("postgresql16-server", "tmux"), services=())
    assert record.changes(packages.stamp, more) == (
        'packages: ["postgresql16-server"] -> ["postgresql16-server", "tmux"]')

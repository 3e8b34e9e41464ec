"""Host stage: what the jail host needs once, before any template or jail."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tasks.checks import BridgeReady, DatasetsExist, DatasetsPrivate, OursMounted, RcSettings
from tasks.context import Context
from tasks.graph import step
from tasks.plan import parent_datasets, private_datasets
from tasks.steps.datasets import create_datasets
from tasks.steps.network import ensure_bridge
from tasks.steps.rcconf import HOST_SETTINGS, set_rc_vars


def task_host(ctx: Context) -> Iterator[dict[str, Any]]:
    """Prepare the host: parent datasets (0700, ours all mounted), jail settings in rc.conf,
    the bridge."""
    names, private = parent_datasets(ctx.config), private_datasets(ctx.config)
    yield step(ctx, f"create the parent datasets {', '.join(names)}; mount the datasets of "
               f"ours left unmounted; mode 0700 for {', '.join(private)}", create_datasets,
               {"zfs": ctx.zfs, "names": names, "private": private}, name="datasets",
               uptodate=[DatasetsExist(ctx.zfs, names), OursMounted(ctx.zfs),
                         DatasetsPrivate(ctx.zfs, private)])
    rc_conf = ctx.config.paths.rc_conf
    settings = " ".join(f"{k}={v}" for k, v in HOST_SETTINGS.items())
    yield step(ctx, f"set {settings} in {rc_conf}",
               set_rc_vars, {"runner": ctx.runner, "rc_conf": rc_conf,
                             "lock": ctx.state.rc_conf_lock, "wanted": HOST_SETTINGS,
                             "step": "host"},
               name="rc", uptodate=[RcSettings(rc_conf, HOST_SETTINGS)])
    network = ctx.config.network
    yield step(ctx, f"create bridge {network.bridge} (uplink {network.uplink}) and persist it "
               f"in {rc_conf}", ensure_bridge,
               {"runner": ctx.runner, "interfaces": ctx.interfaces, "rc_conf": rc_conf,
                "lock": ctx.state.rc_conf_lock, "bridge": network.bridge, "uplink": network.uplink},
               name="bridge", uptodate=[BridgeReady(ctx.interfaces, rc_conf, network.bridge,
                                                    network.uplink)])

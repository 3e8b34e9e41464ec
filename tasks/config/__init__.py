"""config.yaml loaded into typed objects and validated before any command runs:
model.py (the objects and the rules' patterns), loader.py (YAML), validator.py (the checks)."""

from tasks.config.loader import load_config
from tasks.config.model import (
    DEFAULT_DEVFS_RULESET,
    DEFAULT_UPDATE_CHECK,
    MIRROR_ARCH_DIRS,
    Config,
    Jail,
    Network,
    Paths,
    conf_var,
    host_machine,
    machine_of,
    release_major,
    valid_image_source,
)
from tasks.config.validator import parse_config

__all__ = ["DEFAULT_DEVFS_RULESET", "DEFAULT_UPDATE_CHECK", "MIRROR_ARCH_DIRS", "Config",
           "Jail", "Network", "Paths", "conf_var", "host_machine", "load_config", "machine_of",
           "parse_config", "release_major", "valid_image_source"]

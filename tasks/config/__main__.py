"""`python3 -m tasks.config FILE`: check a config.yaml the way every run does, changing
nothing; exit 1 with one line per problem. The Ansible role runs it before a rendered config
replaces the host's (the template's `validate:`)."""

import sys
from pathlib import Path

from tasks.config import load_config
from tasks.errors import ThinjailError, one_line

if len(sys.argv) != 2:
    sys.exit("usage: python3 -m tasks.config FILE")
try:
    load_config(Path(sys.argv[1]))
except ThinjailError as error:
    sys.exit(f"thinjail: {one_line(error)}")

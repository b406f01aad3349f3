# atex_argv.py - an Ansible connection plugin of atex's own: runs every
# command on the system under test through the local command line atex's
# connection gives (atex_connection_command_argv: local, ssh, podman, VMs,
# Testing Farm alike), and copies files through it with cat. The fmf
# executor writes it into a private directory for each ansible-playbook
# it runs (ANSIBLE_CONNECTION_PLUGINS) with the command line in the JSON
# file $ATEX_ANSIBLE_ARGV: one element holds the word
# ATEXCOMMANDPLACEHOLDER, replaced by the command in base64, which the
# system decodes (`base64 -d`) and runs with `sh -c`. Base64 is a single
# shell-safe word whatever quoting the connection adds (ssh joins the
# argv into one remote command line).

DOCUMENTATION = """
name: atex_argv
short_description: run commands through an atex connection
description:
  - Runs commands on the system under test through the local command
    line atex's connection gives, for any kind of atex connection.
author: atex
options: {}
"""

import base64
import json
import os
import shlex
import subprocess

from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.connection import ConnectionBase

PLACEHOLDER = "ATEXCOMMANDPLACEHOLDER"


class Connection(ConnectionBase):
    transport = "atex_argv"
    has_pipelining = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._argv = None

    def _connect(self):
        if self._argv is None:
            path = os.environ.get("ATEX_ANSIBLE_ARGV")
            try:
                with open(path, encoding="utf-8") as f:
                    self._argv = json.load(f)
            except (TypeError, OSError, ValueError) as e:
                raise AnsibleConnectionFailure(
                    "atex_argv: cannot read the command line "
                    f"($ATEX_ANSIBLE_ARGV={path}): {e}"
                ) from e
        self._connected = True
        return self

    def _line(self, cmd):
        word = base64.b64encode(to_bytes(cmd)).decode("ascii")
        return [a.replace(PLACEHOLDER, word) for a in self._argv]

    def _run(self, cmd, stdin=subprocess.DEVNULL, data=None, stdout=None):
        self._connect()
        self._display.vvv(f"EXEC {cmd}", host=self._play_context.remote_addr)
        try:
            p = subprocess.run(
                self._line(cmd),
                stdin=stdin if data is None else None,
                input=data,
                stdout=stdout or subprocess.PIPE,
                stderr=subprocess.PIPE,
                check=False,
            )
        except OSError as e:
            raise AnsibleConnectionFailure(f"atex_argv: {e}") from e
        return p.returncode, p.stdout if stdout is None else b"", p.stderr

    def exec_command(self, cmd, in_data=None, sudoable=True):
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        return self._run(cmd, data=in_data)

    def put_file(self, in_path, out_path):
        super().put_file(in_path, out_path)
        with open(in_path, "rb") as f:
            rc, _, err = self._run(f"cat > {shlex.quote(out_path)}", stdin=f)
        if rc != 0:
            raise AnsibleError(
                f"atex_argv: copying {in_path} to {out_path} failed "
                f"(exit status {rc}): {to_text(err)}"
            )

    def fetch_file(self, in_path, out_path):
        super().fetch_file(in_path, out_path)
        with open(out_path, "wb") as f:
            rc, _, err = self._run(f"cat {shlex.quote(in_path)}", stdout=f)
        if rc != 0:
            raise AnsibleError(
                f"atex_argv: copying {in_path} from the system failed "
                f"(exit status {rc}): {to_text(err)}"
            )

    def close(self):
        self._connected = False

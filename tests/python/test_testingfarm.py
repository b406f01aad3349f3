"""atex.provisioner.testingfarm.TestingFarmProvisioner against the local
fake Testing Farm API (tests/integration/tf-server.py, the server the C
test test_testingfarm.c uses): real requests, a real sshd guest.

The server is started by this module (fast profile, time scale 0.2) with
its own directory and a token of its own; its control API
(/_control/...) says what happened to every request. Each test looks only
at the requests it created (the server keeps earlier tests' requests).
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request

import pytest

from atex.provisioner import ProvisionerError
from atex.provisioner import testingfarm

# Module attributes, not names here: pytest would try to collect Test* classes.

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "..", "integration", "tf-server.py")
TOKEN = "atex-py-tf-secret-4f1c9e"
SCALE = "0.2"
ALIVE = ("new", "queued", "running")

# The fake API's guest is a real sshd: without it the suite must fail
# loudly (make check installs openssh-server), not skip.
if not (os.path.exists("/usr/sbin/sshd") and shutil.which("ssh")):
    raise RuntimeError("test_testingfarm needs /usr/sbin/sshd and ssh "
                       "(openssh-server, openssh-client)")


class Server:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="atex-pytf-")
        # Started from this process: the server exits when its parent goes.
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", SERVER, "--dir", self.dir, "--token", TOKEN,
             "--scale", SCALE],
            stdin=subprocess.DEVNULL,
            stderr=open(os.path.join(self.dir, "stderr"), "w"),
        )
        url = os.path.join(self.dir, "url")
        end = time.monotonic() + 20
        while not (os.path.exists(url) and os.path.getsize(url)):
            if self.proc.poll() is not None or time.monotonic() > end:
                self.stop()
                pytest.fail("tf-server.py did not come up")
            time.sleep(0.05)
        with open(url) as f:
            self.url = f.read().strip()
        with open(os.path.join(self.dir, "ssh-port")) as f:
            self.ssh_port = int(f.read().strip())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _control(self, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.url}/_control/{path}", data=data,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.load(r)

    def requests(self):
        """Every request the server has: id, state, delete_count, ..."""
        return self._control("requests")

    def request_fault(self, **fault):
        self._control("request-faults", fault)

    def new_requests(self, before):
        return [r for r in self.requests() if r["id"] not in before]

    def wait_states(self, ids, states, timeout=10):
        """Waits until every request of ids is in one of states."""
        end = time.monotonic() + timeout
        while True:
            by_id = {r["id"]: r for r in self.requests()}
            if all(by_id[i]["state"] in states for i in ids):
                return by_id
            if time.monotonic() > end:
                pytest.fail(f"requests not {states}: "
                            f"{[(i, by_id[i]['state']) for i in ids]}")
            time.sleep(0.1)


@pytest.fixture(scope="module")
def tf():
    server = Server()
    yield server
    server.stop()


def provisioner(tf, **kwargs):
    opts = dict(url=tf.url, token=TOKEN, source_cidr="127.0.0.1/32",
                ssh_options=[f"Port={tf.ssh_port}"], poll_ms=200, timeout=30)
    opts.update(kwargs)
    compose = opts.pop("compose", "Fedora-41")
    return testingfarm.TestingFarmProvisioner(compose, **opts)


def no_token(caplog, *texts):
    # libatex did log (else the check below proves nothing).
    assert any(rec.name.startswith("atex.") for rec in caplog.records)
    for rec in caplog.records:
        assert TOKEN not in rec.getMessage(), rec.getMessage()
    assert TOKEN not in caplog.text
    for text in texts:
        assert TOKEN not in text


def test_two_remotes_run_release_stop(tf, atex_log):
    before = {r["id"] for r in tf.requests()}
    prov = provisioner(tf, max_remotes=2)
    with prov:
        prov.provision(2)
        remotes = [prov.get_remote(block=True) for _ in range(2)]
        for r in remotes:
            assert isinstance(r, testingfarm.TestingFarmRemote)
            out = r.cmd(["uname"], capture_output=True, text=True, timeout=30)
            assert out.returncode == 0, out.stderr
            assert out.stdout == "Linux\n"
        logins = [r.login() for r in remotes]
        ids = [login["request_id"] for login in logins]
        assert sorted(ids) == sorted(r["id"] for r in tf.new_requests(before))
        assert len(set(ids)) == 2
        for login in logins:
            assert login["user"] == "root"
            assert login["host"] == "127.0.0.1"
        # Every POST carried the ingress rule and the compose.
        for rq in tf.new_requests(before):
            assert rq["body"]["environments"][0]["os"]["compose"] == "Fedora-41"
            assert "127.0.0.1/32" in json.dumps(rq["body"])

        # release cancels exactly its own request.
        remotes[0].release()
        assert remotes[0].released
        by_id = tf.wait_states([ids[0]], ("cancel-requested", "canceled"))
        assert by_id[ids[0]]["delete_count"] == 1
        assert by_id[ids[1]]["state"] == "running"
        assert by_id[ids[1]]["delete_count"] == 0
        out = remotes[1].cmd(["true"], timeout=30)
        assert out.returncode == 0
        stats = prov.stats()
        assert stats["submitted"] == 2 and stats["ready"] == 2
    # stop() (the with block) cancels the request still alive.
    assert remotes[1].released
    by_id = tf.wait_states(ids, ("canceled",))
    assert all(by_id[i]["delete_count"] == 1 for i in ids)
    no_token(atex_log)


def test_stop_cancels_pending_requests(tf, atex_log):
    """Requests not yet handed out (even not running yet) are canceled."""
    before = {r["id"] for r in tf.requests()}
    prov = provisioner(tf, max_remotes=3)
    prov.start()
    prov.provision(3)
    end = time.monotonic() + 10
    while len(tf.new_requests(before)) < 3:
        assert time.monotonic() < end, "3 requests were not submitted"
        time.sleep(0.1)
    prov.stop()
    ids = [r["id"] for r in tf.new_requests(before)]
    assert len(ids) == 3
    by_id = {r["id"]: r for r in tf.requests()}
    assert not [i for i in ids if by_id[i]["state"] in ALIVE]
    tf.wait_states(ids, ("canceled",))
    with pytest.raises(ProvisionerError):
        prov.get_remote(block=False)
    no_token(atex_log)


def test_error_retried_then_raises_with_id(tf, atex_log):
    before = {r["id"] for r in tf.requests()}
    tf.request_fault(error=True, count=2)
    prov = provisioner(tf, max_remotes=1, max_retries=1)
    with prov:
        prov.provision(1)
        with pytest.raises(ProvisionerError) as ei:
            prov.get_remote(block=True)
        rqs = tf.new_requests(before)
        # The first one failed, was replaced once, and the retry failed too.
        assert len(rqs) == 2
        assert [r["state"] for r in rqs] == ["error", "error"]
        msg = str(ei.value)
        assert rqs[1]["id"] in msg
        assert "error" in msg
        assert "max_retries" in msg
        stats = prov.stats()
        assert stats["failed"] == 2 and stats["ready"] == 0
    atex_log_text = atex_log.text
    assert rqs[0]["id"] in atex_log_text  # the first failure was logged
    no_token(atex_log, msg, repr(ei.value))


def test_ctrl_c_in_get_remote(tf, atex_log):
    """SIGINT (from a timer thread) while get_remote(block=True) waits:
    KeyboardInterrupt within 1 s, and the with block cancels every request."""
    before = {r["id"] for r in tf.requests()}
    prov = provisioner(tf, max_remotes=2)
    # Requests whose key is never installed: get_remote would wait for ever.
    tf.request_fault(no_key=True, count=2)
    sent = []

    def interrupt():
        sent.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Timer(0.8, interrupt)
    got = None
    with pytest.raises(KeyboardInterrupt):
        with prov:
            prov.provision(2)
            timer.start()
            try:
                prov.get_remote(block=True)
            finally:
                got = time.monotonic()
    timer.join()
    assert sent and got is not None
    assert got - sent[0] < 1.0
    ids = [r["id"] for r in tf.new_requests(before)]
    assert len(ids) == 2
    by_id = {r["id"]: r for r in tf.requests()}
    assert not [i for i in ids if by_id[i]["state"] in ALIVE], by_id
    tf.wait_states(ids, ("canceled",))
    no_token(atex_log)


def test_token_not_in_bad_auth_error(tf, atex_log):
    """A wrong token: start fails with a clear ProvisionerError (401 on
    whoami), holding neither token."""
    wrong = TOKEN + "-wrong"
    prov = provisioner(tf, token=wrong)
    with pytest.raises(ProvisionerError, match="token was rejected") as ei:
        with prov:
            prov.provision(1)
            prov.get_remote(block=True)
    text = str(ei.value) + repr(ei.value)
    assert wrong not in text and TOKEN not in text
    assert "401" in text
    assert wrong not in atex_log.text
    for rec in atex_log.records:
        assert wrong not in rec.getMessage()
    # Nor in the server's access log (what atex sent in URLs).
    with open(os.path.join(tf.dir, "access.log")) as f:
        access = f.read()
    assert TOKEN not in access and access

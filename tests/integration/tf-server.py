#!/usr/bin/python3
"""A fake Testing Farm API (v0.1) on 127.0.0.1 for atex's tests and benches.

The interface is fixed in docs (tests/integration/tf-server.sh and the
header below); tests and bench/testingfarm drive it. Debian's python3,
standard library only.

What it covers:
- POST/GET/DELETE /v0.1/requests, GET /v0.1/whoami, /v0.1/composes,
  /v0.2/composes/RANCH, with the bearer token checked (401 without it).
- A request's life new -> queued -> running, an artifacts URL whose
  pipeline.log 404s (or 403s) for a while, then grows with coloured lines
  as Testing Farm writes them ("Guest is ready: ArtemisGuest(...)",
  "starting tests execution", "machine is reserved"), read with
  Range: bytes=N- (206/416, 200 without Range).
- A real guest: one sshd on 127.0.0.1 for every request, whose
  authorized_keys holds the keys (TF_RESERVATION_AUTHORIZED_KEYS_BASE64) of
  the requests whose reservation reached "machine is reserved"; a key goes
  away when its request is canceled or ends.
- DELETE -> cancel-requested -> canceled; the pipeline timeout (counted
  from the POST) ends a request as complete; an unknown compose ends it as
  error. A request canceled before it ran has no artifacts (run: null).
- Faults on demand (control API, no auth): status bursts (5xx, 408, 429
  with Retry-After), HTML proxy pages, slow answers, dropped connections,
  replies that are not JSON; per request: error while provisioning, split
  (partial) log lines, a log that 404s or 403s longer, a server ignoring
  Range, a Guest line in an unknown wording (bad_guest), a log answering
  at most N bytes per Range read (log_chunk), a
  key never installed; a POST answered with a given id (id), an error
  quoting the Authorization header back (echo_auth); an API restart (listener closed, the same
  port reopened later, requests and timers kept); the time scale.
- An access log (DIR/access.log, JSON lines) that never holds the token.

What it does not cover: several guests with different addresses (every
request's guest is the same sshd, as the same user), hardware, pools,
kickstart and tags are recorded but not acted upon, no real Artemis/tmt
results (result stays null), no TLS, no API versions but v0.1 (and v0.2
composes), no rate limits but the injected ones, and the service's
exact log wording beyond the lines clients parse.

Details the interface leaves open: delete_count counts every DELETE of
the request that reached the API (409s included, injected faults not);
fault "match" is matched against "METHOD PATH" without the query; the
split_lines delay (0.3 s) is scaled like the other steps; several keys
in one secret are installed and removed together.

Timers: every step of a request's life is an event in one heap, served
by one thread that sleeps on a condition until the earliest event (no
polling). All state is under one lock.

Never leaving sshd behind: sshd is started under a small /bin/sh
watchdog whose stdin is a pipe the server holds; when the server process
ends in any way (even SIGKILL) the pipe reaches EOF and the watchdog
kills sshd. The server also exits (stopping sshd) when its parent process
goes away (it checks getppid() once a second), so a test killed before it
could run tf_server_stop leaves nothing running. Start it directly from
the test's own shell or program, not through a short-lived subshell.
"""

import argparse
import base64
import copy
import datetime
import heapq
import http.server
import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

COMPOSES = ["Fedora-41", "Fedora-42", "CentOS-Stream-9", "CentOS-Stream-10",
            "RHEL-9.6.0-Nightly"]
ALIVE = ("new", "queued", "running")

# Base seconds of each step: fast (tests) and realistic (bench).
PROFILES = {
    "fast": {"new": 1, "queued": 1, "log_404": 1, "log_tick": 0.5,
             "guest_ready": 2, "tests_exec": 1, "key": 1},
    "realistic": {"new": 10, "queued": 30, "log_404": 10, "log_tick": 5,
                  "guest_ready": 120, "tests_exec": 30, "key": 10},
}
CANCEL_S = 0.5
SPLIT_S = 0.3

FILLER = [
    "[guest-provisioning] provisioning guest on Artemis",
    "[guest-provisioning] guest state: routing",
    "[guest-provisioning] guest state: provisioning",
    "[guest-provisioning] guest state: promised",
    "[guest-provisioning] waiting for the guest to become ready",
]

args = None
lock = threading.Lock()
cond = threading.Condition(lock)
events = []                   # heap of (monotonic time, seq, function)
seq = itertools.count()
requests = {}                 # id -> Request, in creation order
faults = []                   # HTTP exchange faults, in order
request_faults = []           # faults for the next created requests
scale = 1.0
stopping = threading.Event()
httpd = None
httpd_lock = threading.Lock()
connections = set()           # sockets of open HTTP connections
access_lock = threading.Lock()
access_file = None
base_url = ""


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).replace(
        tzinfo=None).isoformat()


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def dget(obj, key):
    """obj[key] when obj is a dict (request bodies are anyone's JSON)."""
    return obj.get(key) if isinstance(obj, dict) else None


def schedule(delay_s, fn):
    """Runs fn (under the lock) delay_s from now. Caller holds the lock."""
    heapq.heappush(events, (time.monotonic() + max(delay_s, 0), next(seq), fn))
    cond.notify()


def schedule_at(when, fn):
    """Runs fn (under the lock) at monotonic time `when`: parts of log
    lines keep their order (delays computed apart could swap them)."""
    heapq.heappush(events, (when, next(seq), fn))
    cond.notify()


def timer_thread():
    with cond:
        while not stopping.is_set():
            if not events:
                cond.wait()
                continue
            dt = events[0][0] - time.monotonic()
            if dt > 0:
                cond.wait(dt)
                continue
            _, _, fn = heapq.heappop(events)
            try:
                fn()
            except Exception as e:  # a bug here must not stop every timer
                print(f"tf-server: timer: {e!r}", file=sys.stderr)


def step_s(name, req=None):
    base = PROFILES[args.profile][name]
    if req is not None and name == "log_404" and "log_404_s" in req.faults:
        base = float(req.faults["log_404_s"])
    return base * scale


class Request:
    def __init__(self, body, rfaults):
        self.id = str(uuid.uuid4())
        self.body = body
        self.faults = rfaults
        self.state = None
        self.history = []
        self.created = now_iso()
        self.updated = self.created
        self.log = bytearray()
        self.log_exists = False
        self.log_free_at = 0.0    # monotonic time the next log part may go
        self.ticks = 0
        self.ran = False          # reached running: it has artifacts
        self.guest_ready_at = None
        self.key_installed_at = None
        self.deleted_at = None
        self.delete_count = 0
        self.key = None
        self.env = (body.get("environments") or [{}])[0]
        if not isinstance(self.env, dict):
            self.env = {}
        secret = dget(self.env.get("secrets"),
                      "TF_RESERVATION_AUTHORIZED_KEYS_BASE64")
        if isinstance(secret, str):
            try:
                self.key = base64.b64decode(secret).decode().strip()
            except Exception:
                self.key = None
        self.set_state("new")

    def set_state(self, state):
        self.state = state
        self.updated = now_iso()
        self.history.append([state, time.time()])

    def alive(self):
        return self.state in ALIVE

    def arch(self):
        arch = self.env.get("arch")
        return arch if isinstance(arch, str) and arch else "x86_64"

    def compose(self):
        return dget(self.env.get("os"), "compose")

    def document(self):
        envs = copy.deepcopy(self.body.get("environments"))
        for env in envs if isinstance(envs, list) else []:
            if isinstance(env, dict) and isinstance(env.get("secrets"), dict):
                env["secrets"] = {k: "*****" for k in env["secrets"]}
        run = None
        if self.ran:
            run = {"artifacts": f"{base_url}/artifacts/{self.id}"}
        return {"id": self.id, "state": self.state, "created": self.created,
                "updated": self.updated, "environments_requested": envs,
                "test": self.body.get("test"),
                "settings": self.body.get("settings") or {},
                "result": None, "run": run}

    def control(self):
        return {"id": self.id, "state": self.state, "body": self.body,
                "history": self.history,
                "guest_ready_at": self.guest_ready_at,
                "key_installed_at": self.key_installed_at,
                "deleted_at": self.deleted_at,
                "delete_count": self.delete_count}

    # --- the log ---
    def line(self, text, colour=None):
        """Adds a Testing Farm-like line; split in two parts with the
        split_lines fault (the later part after SPLIT_S scaled)."""
        stamp = time.strftime("%H:%M:%S")
        body = f"[{self.id}] {text}"
        if colour:
            body = f"\033[{colour}m{body}\033[0m"
        data = f"\033[90m[{stamp}]\033[0m \033[32m[+]\033[0m {body}\n".encode()
        parts = [data]
        if self.faults.get("split_lines"):
            cut = len(data) // 2
            parts = [data[:cut], data[cut:]]
        t = max(time.monotonic(), self.log_free_at)
        for i, part in enumerate(parts):
            if i:
                t += SPLIT_S * scale
            if t <= time.monotonic() and len(parts) == 1:
                self.log += part
            else:
                schedule_at(t, lambda p=part: self.log.extend(p))
        self.log_free_at = t + (1e-6 if len(parts) > 1 else 0)

    # --- the life, each step scheduled by the previous one ---
    def start(self):
        schedule(step_s("new"), self.to_queued)
        timeout_min = dget(dget(self.body.get("settings"), "pipeline"),
                           "timeout")
        try:
            timeout_s = float(timeout_min) * 60
        except (TypeError, ValueError):
            timeout_s = 720 * 60  # none or not a number: the default
        schedule(timeout_s * scale, self.timeout)

    def to_queued(self):
        if self.state == "new":
            self.set_state("queued")
            schedule(step_s("queued"), self.to_running)

    def to_running(self):
        if self.state != "queued":
            return
        self.set_state("running")
        self.ran = True
        self.line("[pipeline] pipeline started", "36")
        self.line(FILLER[0])
        schedule(step_s("log_404", self), self.log_appears)
        schedule(step_s("guest_ready"), self.guest_ready)

    def log_appears(self):
        self.log_exists = True
        if self.alive():
            schedule(step_s("log_tick"), self.tick)

    def tick(self):
        if not self.alive():
            return
        self.ticks += 1
        if self.key_installed_at:
            self.line(f"[reservation] machine reserved, tick {self.ticks}")
        else:
            self.line(FILLER[self.ticks % len(FILLER)])
        schedule(step_s("log_tick"), self.tick)

    def guest_ready(self):
        if not self.alive():
            return
        compose = self.compose()
        if compose not in COMPOSES or self.faults.get("error"):
            why = (f"unknown compose {compose}" if compose not in COMPOSES
                   else "Artemis guest failed")
            self.line(f"Guest provisioning failed: {why}", "31")
            self.end("error")
            return
        self.guest_ready_at = time.time()
        name = self.id.split("-")[0] + "-guest"
        if self.faults.get("bad_guest"):  # a wording atex does not know
            self.line(f"Guest is ready: NewGuest(name={name}, "
                      f"address={args.user}@127.0.0.1)")
        else:
            self.line(f"Guest is ready: ArtemisGuest({name}, "
                      f"{args.user}@127.0.0.1, arch={self.arch()}, "
                      f"compose={compose}, snapshots=no)")
        schedule(step_s("tests_exec"), self.tests_exec)

    def tests_exec(self):
        if self.alive():
            self.line("starting tests execution")
            schedule(step_s("key"), self.install_key)

    def install_key(self):
        if not self.alive() or self.faults.get("no_key"):
            return
        self.key_installed_at = time.time()
        write_keys()
        self.line("[reservation] machine is reserved", "33")

    def timeout(self):
        if self.alive():
            self.line("timeout reached", "31")
            self.end("complete")

    def end(self, state):
        self.set_state(state)
        write_keys()

    def delete(self):
        self.deleted_at = time.time()
        self.set_state("cancel-requested")
        self.line("cancel requested", "33")
        write_keys()
        schedule(CANCEL_S * scale, self.canceled)

    def canceled(self):
        if self.state == "cancel-requested":
            self.set_state("canceled")


def write_keys():
    """authorized_keys: the keys of live requests that were installed."""
    keys = []
    for r in requests.values():
        if r.alive() and r.key_installed_at and r.key and r.key not in keys:
            keys.append(r.key)
    write_atomic(os.path.join(args.dir, "authorized_keys"),
                 "".join(k + "\n" for k in keys))


def access(method, path, status, auth, rng, fault):
    entry = {"t": time.time(), "method": method, "path": path,
             "status": status, "auth": auth, "range": rng, "fault": fault}
    with access_lock:
        access_file.write(json.dumps(entry) + "\n")
        access_file.flush()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "tf-server/1"

    def log_message(self, *a):
        pass

    def setup(self):
        super().setup()
        with httpd_lock:
            connections.add(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            with httpd_lock:
                connections.discard(self.connection)

    def reply(self, status, body, ctype="application/json", headers=None,
              head=False):
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(body)
        self.status = status

    def auth_state(self):
        h = self.headers.get("Authorization")
        if h is None:
            return "missing"
        return "ok" if h == f"Bearer {args.token}" else "bad"

    def take_fault(self, what):
        with lock:
            for f in faults:
                if f["match"].search(what):
                    f["count"] -= 1
                    if f["count"] <= 0:
                        faults.remove(f)
                    return f
        return None

    def handle_any(self):
        self.status = None
        fault_name = None
        path = self.path.split("?", 1)[0]
        raw = self.read_body()
        auth = self.auth_state()
        try:
            if path.startswith("/_control/"):
                self.control(path, raw)
                return
            f = self.take_fault(f"{self.command} {path}")
            if f:
                fault_name = self.apply_fault(f)
                if fault_name != "delay":
                    return
            self.api(path, raw, auth)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:  # a bug: say so, keep serving
            print(f"tf-server: {self.command} {path}: {e!r}", file=sys.stderr)
            if self.status is None:
                self.reply(500, {"message": f"tf-server bug: {e!r}"})
        finally:
            access(self.command, path, self.status, auth,
                   self.headers.get("Range"), fault_name)

    def read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            raw = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return raw
                raw += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def apply_fault(self, f):
        """Answers with the fault, or returns "delay" to answer normally."""
        if f.get("delay"):
            time.sleep(float(f["delay"]))
            if not (f.get("drop") or f.get("status") or f.get("not_json")):
                return "delay"
        if f.get("drop"):
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return "drop"
        if f.get("not_json"):
            self.reply(200, "<html>not json</html>\n")
            return "not_json"
        if "id" in f:  # a POST answered with this id, nothing created
            self.reply(200, {"id": f["id"], "state": "new"})
            return "id"
        if f.get("echo_auth"):  # a server quoting the header back
            self.reply(int(f.get("status") or 400), {
                "message": "bad header Authorization: %s"
                % self.headers.get("Authorization")})
            return "echo_auth"
        status = int(f.get("status") or 503)
        hdr = {"Retry-After": "1"} if status == 429 else {}
        if f.get("html"):
            self.reply(status, "<html><head><title>%d</title></head><body>"
                       "<h1>Proxy Error</h1></body></html>\n" % status,
                       "text/html", hdr)
            return "html"
        self.reply(status, {"message": "injected"}, headers=hdr)
        return "status"

    do_GET = do_POST = do_DELETE = do_HEAD = do_PUT = do_PATCH = handle_any

    def need_auth(self, auth):
        if auth != "ok":
            self.reply(401, {"message": "Not authorized"})
            return False
        return True

    def api(self, path, raw, auth):
        m, head = self.command, self.command == "HEAD"
        r = re.fullmatch(r"/artifacts/([^/]+)/pipeline\.log", path)
        if r and m in ("GET", "HEAD"):
            return self.pipeline_log(r.group(1), head)
        if path == "/v0.1/requests" and m == "POST":
            if self.need_auth(auth):
                self.create(raw)
            return
        r = re.fullmatch(r"/v0\.1/requests/([^/]+)", path)
        if r and m == "GET":
            with lock:
                req = requests.get(r.group(1))
                doc = req.document() if req else None
            if doc is None:
                return self.reply(404, {"message": "no such request"})
            return self.reply(200, doc)
        if r and m == "DELETE":
            if self.need_auth(auth):
                self.delete(r.group(1))
            return
        if path == "/v0.1/whoami" and m == "GET":
            if self.need_auth(auth):
                self.reply(200, {"token": {"id": "token-1",
                                           "name": "atex-tests",
                                           "ranch": args.ranch},
                                 "user": {"id": "user-1", "name": "tester"}})
            return
        if m == "GET" and (path == "/v0.1/composes" or
                           path == f"/v0.2/composes/{args.ranch}"):
            if self.need_auth(auth):
                self.reply(200, {"composes": [{"name": c} for c in COMPOSES]})
            return
        self.reply(404, {"message": "not found"}, head=head)

    def create(self, raw):
        try:
            body = json.loads(raw)
        except ValueError:
            return self.reply(400, {"message": "body is not JSON"})
        if not isinstance(body, dict):
            return self.reply(400, {"message": "body is not a JSON object"})
        test = body.get("test")
        if not isinstance(test, dict) or not test.get("fmf"):
            return self.reply(400, {"message": "no test.fmf"})
        envs = body.get("environments")
        if not isinstance(envs, list) or not envs:
            return self.reply(400, {"message": "no environments"})
        with lock:
            rf = request_faults.pop(0) if request_faults else None
            rfaults = {}
            if rf:
                rfaults = rf["faults"]
                rf["count"] -= 1
                if rf["count"] > 0:
                    request_faults.insert(0, rf)
            req = Request(body, dict(rfaults))
            requests[req.id] = req
            req.start()
            doc = req.document()
        self.reply(200, doc)

    def delete(self, rid):
        with lock:
            req = requests.get(rid)
            if req is None:
                doc, status = {"message": "no such request"}, 404
            else:
                req.delete_count += 1
                if not req.alive():
                    doc, status = {"message": "request already finished"}, 409
                else:
                    req.delete()
                    doc, status = req.document(), 200
        self.reply(status, doc)

    def pipeline_log(self, rid, head):
        with lock:
            req = requests.get(rid)
            exists = req is not None and req.log_exists
            data = bytes(req.log) if exists else b""
            f = req.faults if req else {}
        if not exists:
            if f.get("log_403"):
                return self.reply(403, {"message": "forbidden"}, head=head)
            return self.reply(404, {"message": "no such file"}, head=head)
        rng = self.headers.get("Range")
        r = re.fullmatch(r"\s*bytes=(\d+)-(\d*)\s*", rng or "")
        if not r or f.get("ignore_range"):
            return self.reply(200, data, "text/plain; charset=utf-8", head=head)
        start = int(r.group(1))
        if start >= len(data):
            return self.reply(416, b"", "text/plain",
                              {"Content-Range": f"bytes */{len(data)}"},
                              head=head)
        end = len(data) - 1
        if r.group(2):
            end = min(end, int(r.group(2)))
        if f.get("log_chunk"):  # a server answering less than asked
            end = min(end, start + int(f["log_chunk"]) - 1)
        return self.reply(206, data[start:end + 1],
                          "text/plain; charset=utf-8",
                          {"Content-Range": f"bytes {start}-{end}/{len(data)}"},
                          head=head)

    # --- control API ---
    def control(self, path, raw):
        global scale
        if path == "/_control/requests" and self.command == "GET":
            with lock:
                out = [r.control() for r in requests.values()]
            return self.reply(200, out)
        if self.command != "POST":
            return self.reply(404, {"message": "not found"})
        try:
            obj = json.loads(raw or b"{}")
            if not isinstance(obj, dict):
                raise ValueError("not an object")
            count = int(obj.pop("count", 1))
            if path == "/_control/faults":
                obj["match"] = re.compile(obj.get("match") or "")
                obj["count"] = count
                with lock:
                    faults.append(obj)
            elif path == "/_control/request-faults":
                with lock:
                    request_faults.append({"faults": obj, "count": count})
            elif path == "/_control/scale":
                with lock:
                    scale = float(obj["scale"])
            elif path == "/_control/restart":
                down = float(obj.get("down_s", 3))
                threading.Thread(target=restart, args=(down,),
                                 daemon=True).start()
            else:
                return self.reply(404, {"message": "not found"})
        except (ValueError, KeyError, TypeError, re.error) as e:
            return self.reply(400, {"message": f"bad control request: {e}"})
        self.reply(200, {"ok": True})


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # bursts of connections are not dropped


def serve(port):
    global httpd
    for _ in range(100):
        try:
            srv = Server(("127.0.0.1", port), Handler)
            break
        except OSError:
            if port == 0:
                raise
            time.sleep(0.05)
    else:
        raise OSError(f"cannot listen on port {port} again")
    with httpd_lock:
        httpd = srv
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv.server_address[1]


def close_listener():
    with httpd_lock:
        srv = httpd
    # Stop listening at once (connections refused from now on): that also
    # wakes serve_forever from its poll to see shutdown()'s flag.
    t = threading.Thread(target=srv.shutdown)
    t.start()
    try:
        srv.socket.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    t.join()
    srv.server_close()
    with httpd_lock:
        for c in list(connections):
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def restart(down_s):
    time.sleep(0.05)  # the {"ok": true} goes out first
    port = httpd.server_address[1]
    close_listener()
    time.sleep(down_s)
    if not stopping.is_set():
        serve(port)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_sshd():
    """sshd under a watchdog shell that kills it when our pipe closes."""
    d = args.dir
    key = os.path.join(d, "ssh_host_key")
    if not os.path.exists(key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                        key], check=True)
    write_keys()
    os.makedirs("/run/sshd", exist_ok=True)
    sshd = "/usr/sbin/sshd"
    for _ in range(5):
        port = free_port()
        conf = os.path.join(d, "sshd_config")
        write_atomic(conf, "\n".join([
            "ListenAddress 127.0.0.1", f"Port {port}", f"HostKey {key}",
            f"AuthorizedKeysFile {os.path.join(d, 'authorized_keys')}",
            f"PidFile {os.path.join(d, 'sshd.pid')}", "UsePAM no",
            "StrictModes no", "PermitRootLogin yes",
            "PasswordAuthentication no", "KbdInteractiveAuthentication no",
            ""]))
        # The watchdog leads its own process group (sshd, its
        # per-connection processes): all of them go when the pipe ends.
        watchdog = ('"$0" "$@" </dev/null & '
                    'while read -r _; do :; done; '
                    'trap "" TERM; kill -TERM 0; wait')
        proc = subprocess.Popen(
            ["/bin/sh", "-c", watchdog, sshd, "-D", "-f", conf,
             "-E", os.path.join(d, "sshd.log")],
            stdin=subprocess.PIPE, start_new_session=True)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                return proc, port
            except OSError:
                if proc.poll() is not None:
                    break
                time.sleep(0.1)
        stop_sshd(proc)
    raise RuntimeError("sshd did not start: see " +
                       os.path.join(d, "sshd.log"))


def stop_sshd(proc):
    try:
        proc.stdin.close()
    except OSError:
        pass
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def main():
    global args, scale, access_file, base_url
    p = argparse.ArgumentParser(description="fake Testing Farm API")
    p.add_argument("--dir", required=True)
    p.add_argument("--token", default="atex-test-token")
    p.add_argument("--ranch", default="public", choices=["public", "redhat"])
    p.add_argument("--profile", default="fast", choices=list(PROFILES))
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--user", default="root")
    args = p.parse_args()
    scale = args.scale
    parent = os.getppid()
    os.makedirs(args.dir, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *a: stopping.set())
    signal.signal(signal.SIGINT, lambda *a: stopping.set())
    access_file = open(os.path.join(args.dir, "access.log"), "a")
    sshd = None
    try:
        sshd, ssh_port = start_sshd()
        threading.Thread(target=timer_thread, daemon=True).start()
        port = serve(0)
        base_url = f"http://127.0.0.1:{port}"
        write_atomic(os.path.join(args.dir, "ssh-port"), str(ssh_port))
        write_atomic(os.path.join(args.dir, "pid"), str(os.getpid()))
        write_atomic(os.path.join(args.dir, "url"), base_url)
        while not stopping.wait(1.0):
            if os.getppid() != parent:
                print("tf-server: parent gone, exiting", file=sys.stderr)
                break
    finally:
        stopping.set()
        with cond:
            cond.notify()
        if httpd is not None:
            try:
                close_listener()
            except Exception:
                pass
        if sshd is not None:
            stop_sshd(sshd)
    return 0


if __name__ == "__main__":
    sys.exit(main())

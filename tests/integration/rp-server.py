#!/usr/bin/python3
"""A fake ReportPortal API on 127.0.0.1 for atex's tests (stdlib only).

Usage: rp-server.py --dir DIR --token TOKEN [--project P] [--mode async|sync]
                    [--ignore-uuid]
Writes the port to DIR/port once listening; exits when its parent does.

The reporting endpoints of ReportPortal 5 (API v1 and v2, the same
paths and JSON shapes):
  POST /api/v{1,2}/P/launch                 start (or rerun) a launch: 201 {id, number}
  PUT  /api/v{1,2}/P/launch/UUID/finish     200 {id, number, link}
  POST /api/v{1,2}/P/item[/PARENT]          start an item: 201 {id}
  PUT  /api/v{1,2}/P/item/UUID              finish it: 200 {message}
  POST /api/v{1,2}/P/log                    a SaveLogRQ (JSON, 201 {id}) or
        multipart/form-data: json_request_part (a JSON list of SaveLogRQ)
        and the files, matched by file name: 201 {responses: [{id}]}
  GET  /api/v1/P/launch/uuid/UUID, /api/v1/P/item/uuid/UUID
Every call needs "Authorization: Bearer TOKEN" (401 otherwise), an
unknown project is 404. Checks as the server makes them: the launch and
parent exist (404), a child does not start before its parent (400), a
root item is never a retry (400), retryOf names an item (404), a file
named in json_request_part has its part, its name exactly as in the
part's Content-Disposition filename="..." (raw, no unescaping: 400), the
limits of ReportPortal's ValidationConstraints (launch name 256, item
name 1024, launch description 2048, description 65536, attribute key
and value 512, a blank attribute value: 400).

Objects posted again with the same client-supplied uuid (a retried
request whose first try did reach the server) are never duplicated:
--mode async (the default, as the v2 API is: it queues the request and
answers at once) answers 201 with the same id again; --mode sync (as the
v1 API) answers 409 {"errorCode": 4091, "message": "Resource '...'
already exists. You couldn't create the duplicate."}, and an item or
launch finished twice 406 "... already finished". With --ignore-uuid the server
makes its own ids (a client must then use the ids it answers). Repeats are counted
(state "repeats"). Finishing a launch interrupts its items still in
progress, as ReportPortal does (counted: state "forced").

Control API (no auth): GET /_control/state (everything as JSON: launches,
items with their logs, the requests seen), POST /_control/fault
{"kind": K, "count": N, "match": REGEX on "METHOD PATH", ...} with kinds
  status      answer {"status": S} without handling the request (5xx...)
  slow        handle it, then wait {"delay": SECONDS} before answering
  drop_mid    read half the body, then close the connection (nothing done)
  drop_after  handle it, then close the connection without an answer
Attachments are kept in DIR/files/LOGUUID/NAME (bytes as received); the
token is never written anywhere.
"""

import argparse
import email.parser
import email.policy
import http.server
import json
import os
import re
import socketserver
import sys
import threading
import time
import uuid as uuidlib

LOCK = threading.Lock()
STATE = {"launches": {}, "items": {}, "logs": {}, "requests": [],
         "repeats": 0, "forced": 0, "launch_number": 0}
FAULTS = []
ARGS = None


def error(code, status, message):
    return status, {"errorCode": code, "message": message}


LIMITS = {"launch": 256, "item": 1024}


def check_limits(kind, rq):
    """Raises ValueError as ReportPortal's validation of a start request."""
    if len(rq.get("name") or "") > LIMITS[kind]:
        raise ValueError(f"[Field 'name' should have size from '1' to "
                         f"'{LIMITS[kind]}'.]")
    desc = rq.get("description") or ""
    if len(desc) > (2048 if kind == "launch" else 65536):
        raise ValueError("[Field 'description' is too long.]")
    for a in rq.get("attributes") or []:
        if len(a.get("key") or "") > 512 or len(a.get("value") or "") > 512:
            raise ValueError("[Field 'attributes[].value' should have size "
                             "from '1' to '512'.]")
        if not a.get("value"):
            raise ValueError("[Field 'attributes[].value' should not be "
                             "blank.]")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet
        pass

    # -- plumbing ---------------------------------------------------------

    def send_json(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def read_body(self, limit=None):
        n = int(self.headers.get("Content-Length") or 0)
        if limit is not None:
            n = min(n, limit)
        data = b""
        while len(data) < n:
            chunk = self.rfile.read(n - len(data))
            if not chunk:
                break
            data += chunk
        return data

    def take_fault(self, line):
        with LOCK:
            for f in FAULTS:
                if f["count"] > 0 and re.search(f.get("match", ""), line):
                    f["count"] -= 1
                    return dict(f)
        return None

    def handle_any(self, method):
        path = self.path.split("?")[0]
        if path.startswith("/_control/"):
            return self.control(method, path)
        line = f"{method} {path}"
        fault = self.take_fault(line)
        with LOCK:
            STATE["requests"].append({"line": line, "fault":
                                      fault["kind"] if fault else None})
        if fault and fault["kind"] == "drop_mid":
            n = int(self.headers.get("Content-Length") or 0)
            self.read_body(n // 2)
            self.close_connection = True
            self.connection.shutdown(2)
            return
        body = self.read_body()
        if fault and fault["kind"] == "status":
            self.send_json(fault.get("status", 503),
                           {"errorCode": 5000, "message": "injected"})
            return
        auth = self.headers.get("Authorization", "")
        if auth != "Bearer " + ARGS.token:
            self.send_json(401, {"error": "unauthorized",
                                 "error_description": "Full authentication "
                                 "is required to access this resource"})
            return
        status, reply = self.api(method, path, body)
        if fault and fault["kind"] == "slow":
            time.sleep(float(fault.get("delay", 3)))
        if fault and fault["kind"] == "drop_after":
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.send_json(status, reply)

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_PUT(self):
        self.handle_any("PUT")

    # -- control ----------------------------------------------------------

    def control(self, method, path):
        body = self.read_body()
        if path == "/_control/state":
            with LOCK:
                self.send_json(200, STATE)
            return
        if path == "/_control/fault" and method == "POST":
            f = json.loads(body)
            f.setdefault("count", 1)
            with LOCK:
                FAULTS.append(f)
            self.send_json(200, {"ok": True})
            return
        if path == "/_control/reset" and method == "POST":
            with LOCK:
                FAULTS.clear()
                for k in ("launches", "items", "logs"):
                    STATE[k] = {}
                STATE["requests"] = []
                STATE["repeats"] = 0
                STATE["forced"] = 0
            self.send_json(200, {"ok": True})
            return
        self.send_json(404, {"message": "no such control"})

    # -- the API ----------------------------------------------------------

    def api(self, method, path, body):
        m = re.fullmatch(r"/api/v([12])/([^/]+)(/.*)", path)
        if not m:
            return error(4040, 404, f"No handler for {method} {path}")
        if m.group(2) != ARGS.project:
            return error(4040, 404, f"Project '{m.group(2)}' not found. "
                         "Did you use correct project name?")
        rest = m.group(3)
        try:
            with LOCK:
                return self.route(method, rest, body)
        except (ValueError, KeyError, TypeError) as e:
            return error(4001, 400, f"Incorrect Request. {e}")

    def route(self, method, rest, body):
        if method == "POST" and rest == "/launch":
            return self.start_launch(json.loads(body))
        m = re.fullmatch(r"/launch/([^/]+)/finish", rest)
        if method == "PUT" and m:
            return self.finish_launch(m.group(1), json.loads(body))
        m = re.fullmatch(r"/item(?:/([^/]+))?", rest)
        if method == "POST" and m:
            return self.start_item(m.group(1), json.loads(body))
        if method == "PUT" and m and m.group(1):
            return self.finish_item(m.group(1), json.loads(body))
        if method == "POST" and rest == "/log":
            return self.save_log(body)
        m = re.fullmatch(r"/launch/uuid/([^/]+)", rest)
        if method == "GET" and m:
            launch = STATE["launches"].get(m.group(1))
            if not launch:
                return error(4041, 404, f"Launch '{m.group(1)}' not found. "
                             "Did you use correct Launch ID?")
            return 200, launch
        m = re.fullmatch(r"/item/uuid/([^/]+)", rest)
        if method == "GET" and m:
            item = STATE["items"].get(m.group(1))
            if not item:
                return error(40019, 404, f"Test Item '{m.group(1)}' not "
                             "found. Did you use correct Test Item ID?")
            return 200, item
        return error(4040, 404, f"No handler for {method} {rest}")

    @staticmethod
    def client_uuid(rq):
        if ARGS.ignore_uuid:
            return str(uuidlib.uuid4())
        return rq.get("uuid") or str(uuidlib.uuid4())

    def repeat(self, uid, reply_ok):
        STATE["repeats"] += 1
        if ARGS.mode == "async":
            return 201, reply_ok
        return error(4091, 409, f"Resource '{uid}' already exists. "
                     "You couldn't create the duplicate.")

    def start_launch(self, rq):
        if rq.get("rerun"):
            old = STATE["launches"].get(rq.get("rerunOf"))
            if not old:
                return error(4041, 404, f"Launch '{rq.get('rerunOf')}' not "
                             "found. Did you use correct Launch ID?")
            old["status"] = "IN_PROGRESS"
            old["endTime"] = None
            old["reruns"] = old.get("reruns", 0) + 1
            return 201, {"id": old["uuid"], "number": old["number"]}
        for key in ("name", "startTime"):
            if not rq.get(key):
                raise ValueError(f"[Field '{key}' should not be null.]")
        check_limits("launch", rq)
        uid = self.client_uuid(rq)
        if uid in STATE["launches"]:
            old = STATE["launches"][uid]
            return self.repeat(uid, {"id": uid, "number": old["number"]})
        STATE["launch_number"] += 1
        STATE["launches"][uid] = {
            "uuid": uid, "number": STATE["launch_number"],
            "name": rq["name"], "startTime": rq["startTime"],
            "endTime": None, "status": "IN_PROGRESS",
            "description": rq.get("description"),
            "attributes": rq.get("attributes") or [],
            "mode": rq.get("mode", "DEFAULT")}
        return 201, {"id": uid, "number": STATE["launch_number"]}

    def finish_launch(self, uid, rq):
        launch = STATE["launches"].get(uid)
        if not launch:
            return error(4041, 404, f"Launch '{uid}' not found. Did you "
                         "use correct Launch ID?")
        if launch["status"] != "IN_PROGRESS":
            STATE["repeats"] += 1
            if ARGS.mode == "sync":
                return error(4032, 406, "Finish launch is not allowed. "
                             f"Launch '{uid}' already finished")
        else:
            launch["endTime"] = rq["endTime"]
            children = [i for i in STATE["items"].values()
                        if i["launchUuid"] == uid]
            # As ReportPortal: what is still in progress is interrupted
            # (counted: a client should have finished it).
            for i in children:
                if i["status"] == "IN_PROGRESS":
                    i["status"] = "INTERRUPTED"
                    i["endTime"] = rq["endTime"]
                    STATE["forced"] += 1
            bad = [i for i in children if i["status"] in
                   ("FAILED", "INTERRUPTED")]
            launch["status"] = "FAILED" if bad else "PASSED"
        return 200, {"id": uid, "number": launch["number"],
                     "link": f"http://127.0.0.1/ui/#{ARGS.project}/launches/"
                     f"all/{launch['number']}"}

    def start_item(self, parent, rq):
        for key in ("name", "startTime", "type", "launchUuid"):
            if not rq.get(key):
                raise ValueError(f"[Field '{key}' should not be null.]")
        check_limits("item", rq)
        uid = self.client_uuid(rq)
        if uid in STATE["items"]:
            return self.repeat(uid, {"id": uid})
        launch = STATE["launches"].get(rq["launchUuid"])
        if not launch:
            return error(4041, 404, f"Launch '{rq['launchUuid']}' not found. "
                         "Did you use correct Launch ID?")
        retry = bool(rq.get("retry")) or bool(rq.get("retryOf"))
        if parent is None:
            if retry:
                return error(4001, 400, "Incorrect Request. Root test item "
                             "can't be a retry.")
            if rq["startTime"] < launch["startTime"]:
                return error(40025, 400, "Start time of child item should "
                             "be same or later than start time of the parent")
        else:
            p = STATE["items"].get(parent)
            if not p:
                return error(40019, 404, f"Test Item '{parent}' not found. "
                             "Did you use correct Test Item ID?")
            if rq["startTime"] < p["startTime"]:
                return error(40025, 400, "Start time of child item should "
                             "be same or later than start time of the parent")
        if rq.get("retryOf") and rq["retryOf"] not in STATE["items"]:
            return error(40019, 404, f"Test Item '{rq['retryOf']}' not "
                         "found. Did you use correct Test Item ID?")
        item = {"uuid": uid, "parent": parent, "launchUuid": rq["launchUuid"],
                "name": rq["name"], "type": rq["type"].upper(),
                "startTime": rq["startTime"], "endTime": None,
                "status": "IN_PROGRESS", "description": rq.get("description"),
                "hasStats": rq.get("hasStats", True),
                "attributes": rq.get("attributes") or [],
                "codeRef": rq.get("codeRef"), "retry": retry,
                "retryOf": rq.get("retryOf"), "logs": []}
        if retry:
            prev = STATE["items"].get(rq.get("retryOf"))
            if prev is None:  # the last same-named sibling, as RP finds it
                same = [i for i in STATE["items"].values()
                        if i["parent"] == parent and i["name"] == rq["name"]
                        and i["uuid"] != uid and not i.get("retryOf_next")]
                prev = same[-1] if same else None
            if prev is None:
                return error(40019, 404, "Test Item not found for retry")
            prev["retryOf_next"] = uid
            prev["isRetried"] = True
        STATE["items"][uid] = item
        return 201, {"id": uid}

    def finish_item(self, uid, rq):
        item = STATE["items"].get(uid)
        if not item:
            return error(40019, 404, f"Test Item '{uid}' not found. Did you "
                         "use correct Test Item ID?")
        if item["status"] != "IN_PROGRESS":
            STATE["repeats"] += 1
            if ARGS.mode == "sync":
                return error(40018, 406, f"Reporting for item {uid} already "
                             "finished. Please, check item status.")
            return 200, {"message": f"Accepted finish request for test "
                         f"item ID = {uid}"}
        if not rq.get("endTime"):
            raise ValueError("[Field 'endTime' should not be null.]")
        if len(rq.get("description") or "") > 65536:
            raise ValueError("[Field 'description' is too long.]")
        if rq["endTime"] < item["startTime"]:
            return error(4001, 400, "Finish time should be later than "
                         "start time")
        item["endTime"] = rq["endTime"]
        item["status"] = (rq.get("status") or "PASSED").upper()
        if rq.get("description") is not None:
            item["description"] = rq["description"]
        return 200, {"message": f"TestItem with ID = '{uid}' successfully "
                     "finished."}

    def add_log(self, rq, files):
        uid = self.client_uuid(rq)
        if uid in STATE["logs"]:
            STATE["repeats"] += 1
            return uid, ARGS.mode == "sync"
        item = STATE["items"].get(rq.get("itemUuid"))
        if rq.get("itemUuid") and not item:
            raise KeyError(f"Test Item '{rq.get('itemUuid')}' not found")
        log = {"uuid": uid, "itemUuid": rq.get("itemUuid"),
               "launchUuid": rq.get("launchUuid"), "time": rq.get("time"),
               "level": rq.get("level"), "message": rq.get("message")}
        f = rq.get("file")
        if f:
            name = f.get("name")
            if name not in files:
                raise ValueError("Binary data cannot be saved. There is no "
                                 f"request part or file with name {name}")
            d = os.path.join(ARGS.dir, "files", uid)
            os.makedirs(d, exist_ok=True)
            path = os.path.join(d, os.path.basename(name))
            with open(path, "wb") as out:
                out.write(files[name])
            log["file"] = {"name": name, "path": path,
                           "size": len(files[name])}
        STATE["logs"][uid] = log
        if item is not None:
            item["logs"].append(uid)
        return uid, False

    def save_log(self, body):
        ctype = self.headers.get("Content-Type", "")
        if ctype.startswith("application/json"):
            uid, dup = self.add_log(json.loads(body), {})
            if dup:
                return self.repeat(uid, {})
            return 201, {"id": uid}
        if not ctype.startswith("multipart/form-data"):
            return error(4001, 400, "Incorrect Request. Unsupported "
                         "content type")
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body)
        entries, files = None, {}
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name == "json_request_part":
                entries = json.loads(part.get_payload(decode=True))
            elif part.get_filename():
                # Matched by the name as sent, with no unescaping: a
                # client must send the same name in both places.
                raw = re.search(r'filename="((?:[^"\\]|\\.)*)"',
                                part.get("Content-Disposition", ""))
                key = raw.group(1) if raw else part.get_filename()
                files[key] = part.get_payload(decode=True)
        if not isinstance(entries, list):
            return error(4001, 400, "Incorrect Request. No json_request_part")
        responses = []
        for rq in entries:
            uid, dup = self.add_log(rq, files)
            if dup:
                return self.repeat(uid, {})
            responses.append({"id": uid})
        return 201, {"responses": responses}


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def watch_parent(ppid):
    while True:
        time.sleep(1)
        if os.getppid() != ppid:
            os._exit(0)


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--project", default="atex_personal")
    p.add_argument("--mode", choices=("async", "sync"), default="async")
    p.add_argument("--ignore-uuid", action="store_true",
                   help="make our own ids, as a server that does not take "
                   "the client's uuid")
    ARGS = p.parse_args()
    # The token may also come from the environment, never an argument
    # others see: "--token -" reads RP_SERVER_TOKEN.
    if ARGS.token == "-":
        ARGS.token = os.environ.get("RP_SERVER_TOKEN", "")
    os.makedirs(os.path.join(ARGS.dir, "files"), exist_ok=True)
    srv = Server(("127.0.0.1", 0), Handler)
    tmp = os.path.join(ARGS.dir, "port.tmp")
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, os.path.join(ARGS.dir, "port"))
    threading.Thread(target=watch_parent, args=(os.getppid(),),
                     daemon=True).start()
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

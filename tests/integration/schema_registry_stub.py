#!/usr/bin/python3
"""A stand-in for a Confluent Schema Registry: NOT a real registry.

It answers the documented REST API (GET /schemas/ids/{id},
POST /subjects/{subject}/versions) with the documented response shapes and
error codes, recorded from Confluent's API reference, so drover's client
can be tested where no real registry can run.  Used by
tests/integration/test_schema_interop.c.

usage: schema_registry_stub.py PORT_FILE [--token T] [--fail-ids]
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CT = "application/vnd.schemaregistry.v1+json"
schemas = {}  # id -> schema text
token = None
fail_ids = "--fail-ids" in sys.argv
if "--token" in sys.argv:
    token = sys.argv[sys.argv.index("--token") + 1]


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", CT)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def authorized(self):
        if token and self.headers.get("Authorization") != "Bearer " + token:
            self.reply(401, {"error_code": 401, "message": "Unauthorized"})
            return False
        return True

    def do_GET(self):
        if not self.authorized():
            return
        parts = self.path.strip("/").split("/")
        if len(parts) == 3 and parts[:2] == ["schemas", "ids"]:
            if fail_ids:
                self.reply(500, {"error_code": 50001,
                                 "message": "Error in the backend data store"})
                return
            sid = int(parts[2])
            if sid in schemas:
                self.reply(200, {"schema": schemas[sid]})
            else:
                self.reply(404, {"error_code": 40403,
                                 "message": "Schema %d not found" % sid})
            return
        self.reply(404, {"error_code": 404, "message": "HTTP 404 Not Found"})

    def do_POST(self):
        if not self.authorized():
            return
        parts = self.path.strip("/").split("/")
        n = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(n) or b"{}")
        if len(parts) == 3 and parts[0] == "subjects" and parts[2] == "versions":
            text = body.get("schema")
            if not isinstance(text, str):
                self.reply(422, {"error_code": 42201,
                                 "message": "Invalid schema"})
                return
            for sid, s in schemas.items():
                if s == text:
                    self.reply(200, {"id": sid})
                    return
            sid = len(schemas) + 1
            schemas[sid] = text
            self.reply(200, {"id": sid})
            return
        self.reply(404, {"error_code": 404, "message": "HTTP 404 Not Found"})


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
import os
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
server.serve_forever()

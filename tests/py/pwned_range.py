"""A breached-password range API on loopback, in the format of Have I Been Pwned's
`GET /range/{first 5 hex of SHA-1}`: lines `SUFFIX:COUNT`, with padding lines of count 0.
The passwords it knows are the arguments. Prints its port, then serves until killed."""

import hashlib
import http.server
import sys

BREACHED = [hashlib.sha1(p.encode()).hexdigest().upper() for p in sys.argv[1:]]


class Range(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        prefix = self.path.rsplit("/", 1)[-1].upper()
        if not self.path.startswith("/range/") or len(prefix) != 5:
            self.send_error(404)
            return
        lines = [h[5:] + ":42" for h in BREACHED if h.startswith(prefix)]
        # Padding, as the real service sends with Add-Padding: entries that count zero.
        lines += ["%035X:0" % i for i in range(3)]
        body = "\r\n".join(lines).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", 0), Range)
print(server.server_address[1], flush=True)
server.serve_forever()

"""A crowd at once: N connections to 127.0.0.1:PORT, each sending one complete POST (a
unique descricao, f0000000…), then every answer read within HOLD + 60 s.

    python3 bench/flood.py PORT N HOLD

Prints the answers by status, the client-side errors by kind, and what never finished.
Used by bench/overload.sh; bounded in count and time, loopback only."""

import collections
import resource
import selectors
import socket
import sys
import time

_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
port, n, hold = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
socks = []
errs = collections.Counter()
for i in range(n):
    s = socket.socket()
    s.setblocking(False)
    try:
        s.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    except Exception as e:
        errs[type(e).__name__] += 1
        continue
    socks.append((i, s))
sel = selectors.DefaultSelector()
pending = {}
for i, s in socks:
    body = f'{{"valor": 1, "tipo": "c", "descricao": "f{i:07d}"}}'.encode()
    pending[s] = (
        b"POST /clientes/%d/transacoes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
        % (i % 5 + 1, len(body), body)
    )
    sel.register(s, selectors.EVENT_WRITE)
resp = {}
status = collections.Counter()
deadline = time.time() + hold + 60
while sel.get_map() and time.time() < deadline:
    for key, ev in sel.select(timeout=1):
        s = key.fileobj
        if ev & selectors.EVENT_WRITE:
            try:
                s.send(pending[s])
                sel.modify(s, selectors.EVENT_READ)
                resp[s] = b""
            except Exception as e:
                errs["send:" + type(e).__name__] += 1
                sel.unregister(s)
                s.close()
        else:
            try:
                d = s.recv(4096)
            except Exception as e:
                errs["recv:" + type(e).__name__] += 1
                sel.unregister(s)
                s.close()
                continue
            if d:
                resp[s] += d
            else:
                r = resp[s]
                status[r[9:12].decode() if r else "empty"] += 1
                sel.unregister(s)
                s.close()
print("status", dict(status), "errors", dict(errs), "unfinished", len(sel.get_map()))

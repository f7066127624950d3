"""The lab's harness around fakepve (PyPI, AGPL; our own code: it imports the
installed package and runs it in this separate process, nothing is copied).

Started by src/lab/harness.rs, never by hand:

    LAB_PASSWORD=... LAB_TOKEN_SECRET=... python harness.py \
        --host 127.0.0.1 --port 8006 --certdir DIR --time-scale 0.1 \
        --user root@pam --token-id root@pam!lab

It does only what the PVE API cannot: registers the API token (fakepve has
no token API, fakepve.md G2) and sets the guest agent's answer for a VM
(fakepve.md 4.3). Everything else the lab does through the API.

Prints one line, `READY <url> <ca-file>` once listening, or
`ERROR <message>` and exits 2. Then reads JSON commands from stdin, one per
line, and answers each with one JSON line `{"ok": true, "result": ...}` or
`{"ok": false, "error": "..."}`. Commands run on the fake's own event loop.
EOF on stdin (the lab went away, however it ended) stops the fake.
"""

import argparse
import asyncio
import json
import os
import sys

from fakepve import FakePve
from fakepve.certs import make_cert


def run(pve, cmd):
    op = cmd.get('op')
    if op == 'ping':
        return 'pong'
    if op == 'agent':
        vm = pve.vm(int(cmd['vmid']))
        if vm is None:
            raise KeyError('no VM {0}'.format(cmd['vmid']))
        vm.agent = cmd.get('agent')
        return None
    raise KeyError('unknown op {0!r}'.format(op))


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--host', default='127.0.0.1')
    ap.add_argument('--port', type=int, default=8006)
    ap.add_argument('--certdir', required=True)
    ap.add_argument('--time-scale', type=float, default=0.1)
    ap.add_argument('--user', default='root@pam')
    ap.add_argument('--token-id', default='root@pam!lab')
    args = ap.parse_args()

    pve = FakePve(user=args.user, password=os.environ.get('LAB_PASSWORD', 'secret'),
                  host=args.host, port=args.port)
    pve.time_scale = args.time_scale
    pve.max_requests = 1000000
    pve.apitokens[args.token_id] = os.environ.get('LAB_TOKEN_SECRET', '')
    try:
        certfile, _keyfile, _ = make_cert(args.certdir, hosts=(args.host,))
        await pve.start(certfile, _keyfile)
    except Exception as e:  # the lab shows this line to the user
        print('ERROR cannot start fakepve on {0}:{1}: {2}'.format(args.host, args.port, e), flush=True)
        sys.exit(2)
    print('READY {0} {1}'.format(pve.url, certfile), flush=True)

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            break
        if not line.strip():
            continue
        try:
            answer = {'ok': True, 'result': run(pve, json.loads(line))}
        except Exception as e:  # reported to the lab
            answer = {'ok': False, 'error': '{0}: {1}'.format(type(e).__name__, e)}
        sys.stdout.write(json.dumps(answer, default=str) + '\n')
        sys.stdout.flush()
    await pve.stop()


if __name__ == '__main__':
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass

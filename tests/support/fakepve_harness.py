"""Our own test harness around fakepve (PyPI, AGPL): imports the installed
package and runs it in this separate process; nothing of fakepve is copied.

Started by tests/support/fakepve.rs:

    python fakepve_harness.py --certdir DIR [--time-scale 0.01]

Prints one line `READY <url> <ca-file>` once listening on 127.0.0.1 with a
free port, then reads JSON commands from stdin, one per line, and answers
each with one JSON line `{"ok": true, "result": ...}` or
`{"ok": false, "error": "..."}`. Commands run on the fake's own event loop,
so they never race its tasks. EOF on stdin (the test process went away)
stops the fake.
"""

import argparse
import asyncio
import json
import sys

from fakepve import FakePve
from fakepve.certs import make_cert


def vm_of(pve, vmid):
    vm = pve.vm(int(vmid))
    if vm is None:
        raise KeyError('no VM {0}'.format(vmid))
    return vm


async def run(pve, cmd):
    op = cmd.pop('op')
    if op == 'fail':
        pve.fail(**cmd)
        return None
    if op == 'token':
        pve.apitokens[cmd['id']] = cmd['secret']
        return None
    if op == 'ticket_ttl':
        pve.ticket_ttl = float(cmd['secs'])
        return None
    if op == 'time_scale':
        pve.time_scale = float(cmd['scale'])
        return None
    if op == 'add_vm':
        attrs = cmd.pop('attrs', {})
        vm = pve.add_vm(cmd.pop('vmid'), cmd.pop('name'), **cmd)
        for k, v in attrs.items():
            setattr(vm, k, v)
        return None
    if op == 'vm_set':
        vm = vm_of(pve, cmd['vmid'])
        for k, v in cmd['attrs'].items():
            setattr(vm, k, v)
        return None
    if op == 'vm_config':
        return dict(vm_of(pve, cmd['vmid']).config)
    if op == 'vmids':
        return sorted(v.vmid for v in pve.vms)
    if op == 'hold_config_lock':
        await pve.hold_config_lock(int(cmd['vmid']), float(cmd['secs']))
        return None
    if op == 'release_config_lock':
        pve.release_config_lock(int(cmd['vmid']))
        return None
    if op == 'requests':
        return [[m, p] for (m, p, _b) in pve.requests]
    if op == 'clear_requests':
        del pve.requests[:]
        return None
    if op == 'store_file':
        pve.store_file(cmd['storage'], cmd['name'], int(cmd['size']), cmd.get('content', 'iso'))
        return None
    if op == 'storage_content':
        pve.storages[cmd['storage']]['content'] = cmd['content']
        return None
    raise KeyError('unknown op {0!r}'.format(op))


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--certdir', required=True)
    ap.add_argument('--time-scale', type=float, default=0.01)
    ap.add_argument('--user', default='root@pam')
    ap.add_argument('--password', default='secret')
    args = ap.parse_args()

    pve = FakePve(user=args.user, password=args.password, host='127.0.0.1', port=0)
    pve.time_scale = args.time_scale
    pve.max_requests = 1000000
    certfile, keyfile, _ = make_cert(args.certdir, hosts=('127.0.0.1',))
    await pve.start(certfile, keyfile)
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
            result = await run(pve, json.loads(line))
            answer = {'ok': True, 'result': result}
        except Exception as e:  # reported to the test, which fails with it
            answer = {'ok': False, 'error': '{0}: {1}'.format(type(e).__name__, e)}
        sys.stdout.write(json.dumps(answer, default=str) + '\n')
        sys.stdout.flush()
    await pve.stop()


if __name__ == '__main__':
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass

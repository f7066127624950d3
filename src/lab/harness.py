"""Our harness around fakepve (PyPI, AGPL; our own code: it imports the
installed package and runs it in this separate process, nothing is copied).

One harness for the lab (src/lab/harness.rs, which embeds this file) and the
integration tests (tests/support/fakepve.rs, which runs it from the source
tree). Never started by hand:

    HARNESS_PASSWORD=... HARNESS_TOKEN_SECRET=... python harness.py \
        --certdir DIR [--host 127.0.0.1] [--port 0] [--time-scale 0.01] \
        [--user root@pam] [--token-id root@pam!lab]

`--port 0` takes a free port. The password (default `secret`) and the
secret of `--token-id` come from the environment, never the command line.

It does only what the PVE API cannot on fakepve: tokens (fakepve has no token
API, fakepve.md G2), guest-agent answers (4.3), fault injection, state set-up
and inspection (pool membership and changes made by hand included), the
request log, and three gaps filled: PCI resource mappings (`/cluster/mapping/pci`)
and HA resources (`/cluster/ha/resources`, over fakepve's own model of an
HA-managed VM), both answered from the schema only by fakepve 0.5.0, are
stored as pve-manager and pve-ha-manager store them; and a VM disk resize
(fakepve.md G9, a no-op there) changes the drive's `size=` as PVE's
`qemu-server` `resize_vm` does, in a `resize` task that fails with PVE's
words for a missing disk or a shrink. Each logged request also keeps its
User-Agent and the API token id it authenticated with (never the secret), so
a caller can tell whose requests they were.

Prints one line, `READY <url> <ca-file>` once listening, or
`ERROR <message>` and exits 2. Then reads JSON commands from stdin, one per
line, and answers each with one JSON line `{"ok": true, "result": ...}` or
`{"ok": false, "error": "..."}`, with the command's `seq` echoed. Commands run on the fake's own event loop,
so they never race its tasks. EOF on stdin (the caller went away, however it
ended) stops the fake.
"""

import argparse
import asyncio
import json
import os
import re
import sys

from fakepve import FakePve
from fakepve.certs import make_cert
from fakepve.model import PveError, TaskError

UNITS = {'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30, 'T': 1 << 40}


def size_bytes(text, default_unit):
    """`50G`, `+10G`, `1024` (PVE: no unit is bytes in the request, G in a drive's size=)."""
    m = re.fullmatch(r'(\d+(?:\.\d+)?)([KMGT])?', text)
    if not m:
        return None
    return int(float(m.group(1)) * UNITS.get(m.group(2) or default_unit, 1))


def format_size(n):
    """PVE's format_size: the largest unit that divides the size."""
    for unit in ('T', 'G', 'M', 'K'):
        if n % UNITS[unit] == 0:
            return '{0}{1}'.format(n // UNITS[unit], unit)
    return str(n)


class HarnessPve(FakePve):
    """FakePve whose request log also keeps (User-Agent, token id) per entry."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.callers = []

    def _record(self, request, body):
        super()._record(request, body)
        auth = request.headers.get('Authorization', '')
        token = auth[len('PVEAPIToken='):].partition('=')[0] if auth.startswith('PVEAPIToken=') else ''
        self.callers.append((request.headers.get('User-Agent', ''), token))
        # fakepve drops the oldest requests beyond max_requests: same here.
        del self.callers[:max(0, len(self.callers) - len(self.requests))]


    async def synthesise(self, match, method, info, user, values):
        if method == 'PUT' and match.template.endswith('/qemu/{vmid}/resize'):
            return await self.resize(values, user)
        if match.template in ('/cluster/mapping/pci', '/cluster/mapping/pci/{id}'):
            return self.pci_mapping(method, values)
        if match.template in ('/cluster/ha/resources', '/cluster/ha/resources/{sid}'):
            return self.ha_resource(method, values)
        return await super().synthesise(match, method, info, user, values)

    HA_KEYS = ('comment', 'max_restart', 'max_relocate', 'failback', 'auto-rebalance')

    def ha_resource(self, method, values):
        """/cluster/ha/resources[/{sid}] for VMs: fakepve models an HA-managed
        VM (`ha_state`: power actions become HA requests, `hastate` in the
        listing) but answers this API from the schema only. Modelled on
        pve-ha-manager's PVE/API2/HA/Resources.pm: the resource is the VM's
        `ha_state` plus its options; the HA manager then carries a state out
        after fakepve's `ha_delay` (started: running; stopped, disabled:
        stopped; ignored: left alone)."""
        extra = self.__dict__.setdefault('ha_options', {})
        sid = values.get('sid')
        vmid = None
        if sid is not None:
            kind, _, name = str(sid).rpartition(':')
            if kind not in ('', 'vm') or not name.isdigit():
                raise PveError(500, "unable to parse service id '{0}'".format(sid))
            vmid = int(name)
        managed = [vm for vm in self.vms if vm.ha_managed]
        entry = lambda vm: dict({'sid': 'vm:{0}'.format(vm.vmid), 'type': 'vm', 'state': vm.ha_state,
                                 'digest': self._ha_digest()}, **extra.get(vm.vmid, {}))
        if method == 'GET' and sid is None:
            if values.get('type') not in (None, 'vm'):
                return []
            return [entry(vm) for vm in sorted(managed, key=lambda v: v.vmid)]
        vm = self.vm(vmid)
        if method == 'POST':
            if vm is not None and vm.ha_managed:
                raise PveError(500, "resource ID 'vm:{0}' already defined".format(vmid))
            if vm is None:
                raise PveError(500, 'VM {0} does not exist'.format(vmid))
            extra[vmid] = {k: values[k] for k in self.HA_KEYS if values.get(k) is not None}
            self._ha_set(vm, values.get('state') or 'started')
            return None
        if vm is None or not vm.ha_managed:
            raise PveError(500, "no such resource 'vm:{0}'".format(vmid))
        if method == 'GET':
            return entry(vm)
        if method == 'DELETE':
            vm.ha_state = None
            extra.pop(vmid, None)
            return None
        # PUT
        if values.get('digest') and values['digest'] != self._ha_digest():
            raise PveError(500, 'detected modified configuration - file changed by other user? Try again.')
        opts = extra.setdefault(vmid, {})
        for key in (values.get('delete') or '').replace(';', ',').split(','):
            if key.strip() and key.strip() not in self.HA_KEYS:
                raise PveError(500, "no such option '{0}'".format(key.strip()))
            opts.pop(key.strip(), None)
        opts.update({k: values[k] for k in self.HA_KEYS if values.get(k) is not None})
        if values.get('state'):
            self._ha_set(vm, values['state'])
        return None

    def _ha_digest(self):
        import hashlib
        blob = {str(vm.vmid): [vm.ha_state, self.__dict__.get('ha_options', {}).get(vm.vmid)]
                for vm in self.vms if vm.ha_managed}
        return hashlib.sha1(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()

    def _ha_set(self, vm, state):
        """The requested state, carried out by the HA manager a moment later."""
        vm.ha_state = 'started' if state == 'enabled' else state

        async def later():
            await self.pause(self.ha_delay)
            if vm.ha_state != state and not (state == 'enabled' and vm.ha_state == 'started'):
                return  # asked for something else since
            if vm.ha_state == 'started' and vm.status != 'running':
                vm.apply_pending()
                vm.status = vm.qmpstatus = 'running'
                vm.started_at = __import__('time').time()
            elif vm.ha_state in ('stopped', 'disabled'):
                vm.status = vm.qmpstatus = 'stopped'
        asyncio.ensure_future(later())

    def pci_mapping(self, method, values):
        """/cluster/mapping/pci[/{id}]: fakepve answers these from the schema
        only (nothing stored). Modelled on pve-manager's API2/Cluster/Mapping/PCI.pm
        over pve-guest-common's PVE/Mapping/PCI.pm section config: the values
        arrive checked against the schema (map entries' formats included)."""
        store = self.__dict__.setdefault('pci_mappings', {})
        ident = values.get('id')
        as_list = lambda v: v if isinstance(v, list) else ([] if v is None else [v])
        flag = lambda v: 1 if str(v) in ('1', 'true', 'on', 'yes') else 0
        if method == 'GET' and ident is None:
            return [dict({'id': k, 'map': list(v['map'])}, **({'description': v['description']}
                        if 'description' in v else {})) for k, v in sorted(store.items())]
        if method == 'POST':
            if ident in store:
                raise PveError(500, "mapping '{0}' already defined".format(ident))
            entry = {'map': as_list(values.get('map'))}
            for key in ('description', 'mdev', 'live-migration-capable'):
                if values.get(key) is not None:
                    entry[key] = flag(values[key]) if key != 'description' else values[key]
            store[ident] = entry
            return None
        entry = store.get(ident)
        if entry is None:
            raise PveError(500, "no such mapping '{0}'".format(ident))
        if method == 'GET':
            return dict(entry, type='pci', digest=self._pci_digest(entry))
        if method == 'DELETE':
            del store[ident]
            return None
        # PUT
        if values.get('digest') and values['digest'] != self._pci_digest(entry):
            raise PveError(500, 'detected modified configuration - file changed by other user? Try again.')
        for key in (values.get('delete') or '').replace(';', ',').split(','):
            if key.strip() and key.strip() not in ('description', 'mdev', 'live-migration-capable'):
                raise PveError(500, "no such option '{0}'".format(key.strip()))
            if key.strip():
                entry.pop(key.strip(), None)
        if values.get('map') is not None:
            entry['map'] = as_list(values['map'])
        for key in ('description', 'mdev', 'live-migration-capable'):
            if values.get(key) is not None:
                entry[key] = flag(values[key]) if key != 'description' else values[key]
        return None

    @staticmethod
    def _pci_digest(entry):
        import hashlib
        return hashlib.sha1(json.dumps(entry, sort_keys=True).encode()).hexdigest()

    async def resize(self, values, user):
        """PUT /nodes/{node}/qemu/{vmid}/resize: grow a drive's size= (qemu-server resize_vm)."""
        vm = self.find(values['node'], values['vmid'])
        disk, asked = values['disk'], str(values['size'])

        async def body():
            drive = vm.config.get(disk)
            if drive is None:
                raise TaskError("disk '{0}' does not exist".format(disk))
            m = re.search(r'(?:^|,)size=([^,]+)', drive)
            current = (size_bytes(m.group(1), 'G') or 0) if m else 0
            want = size_bytes(asked.lstrip('+'), '')
            if want is None:
                raise TaskError("invalid size '{0}'".format(asked))
            new = current + want if asked.startswith('+') else want
            if new < current:
                raise TaskError('shrinking disks is not supported')
            text = format_size(new)
            if m:
                vm.config[disk] = re.sub(r'(^|,)size=[^,]+', lambda g: g.group(1) + 'size=' + text, drive)
            else:
                vm.config[disk] = drive + ',size=' + text
            return 'Image resized to {0}'.format(text)
        return await self.task(values['node'], 'resize', vm.vmid, user or 'root@pam', body, vm=vm)


def vm_of(pve, vmid):
    vm = pve.vm(int(vmid))
    if vm is None:
        raise KeyError('no VM {0}'.format(vmid))
    return vm


def set_attrs(vm, attrs):
    for k, v in attrs.items():
        setattr(vm, k, v)


async def run(pve, cmd):
    op = cmd.pop('op', None)
    if op == 'ping':
        return 'pong'
    if op == 'agent':
        vm_of(pve, cmd['vmid']).agent = cmd.get('agent')
        return None
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
        set_attrs(pve.add_vm(cmd.pop('vmid'), cmd.pop('name'), **cmd), attrs)
        return None
    if op == 'vm_set':
        set_attrs(vm_of(pve, cmd['vmid']), cmd['attrs'])
        return None
    if op == 'vm_status':
        return vm_of(pve, cmd['vmid']).status
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
        # [method, path, user agent, token id] per request, oldest first.
        return [[m, p, ua, tok] for ((m, p, _b), (ua, tok)) in zip(pve.requests, pve.callers)]
    if op == 'clear_requests':
        del pve.requests[:]
        del pve.callers[:]
        return None
    if op == 'add_node':
        pve.add_node(cmd['name'], online=cmd.get('online', True))
        return None
    if op == 'store_file':
        pve.store_file(cmd['storage'], cmd['name'], int(cmd['size']), cmd.get('content', 'iso'))
        return None
    if op == 'storage_content':
        pve.storages[cmd['storage']]['content'] = cmd['content']
        return None
    if op == 'pools':
        # {pool: {'vms': [vmid...], 'comment': str or None}}: what the web UI shows.
        return {name: {'vms': sorted(ids), 'comment': pve.pool_info.get(name, {}).get('comment')}
                for name, ids in pve.pools.items()}
    if op == 'pool_move':
        # A hand-made change (web UI): the VM leaves its pool, and joins `pool` if given.
        pve._pool_leave(int(cmd['vmid']))
        if cmd.get('pool'):
            pve._pool_join(cmd['pool'], int(cmd['vmid']))
        return None
    if op == 'pci_mappings':
        return pve.__dict__.get('pci_mappings', {})
    if op == 'pci_mapping_set':
        # A hand-made change (web UI): the mapping's entry as given, or gone.
        store = pve.__dict__.setdefault('pci_mappings', {})
        if cmd.get('entry') is None:
            store.pop(cmd['id'], None)
        else:
            store[cmd['id']] = cmd['entry']
        return None
    if op == 'ha_resources':
        return pve.ha_resource('GET', {})
    if op == 'ha_state':
        # A hand-made change (ha-manager set vm:N --state S), not carried out.
        vm_of(pve, cmd['vmid']).ha_state = cmd['state']
        return None
    if op == 'pool_comment':
        pve._pool_meta(cmd['pool'])['comment'] = cmd.get('comment')
        return None
    raise KeyError('unknown op {0!r}'.format(op))


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--host', default='127.0.0.1')
    ap.add_argument('--port', type=int, default=0)
    ap.add_argument('--certdir', required=True)
    ap.add_argument('--time-scale', type=float, default=0.01)
    ap.add_argument('--user', default='root@pam')
    ap.add_argument('--token-id')
    args = ap.parse_args()

    pve = HarnessPve(user=args.user, password=os.environ.get('HARNESS_PASSWORD', 'secret'),
                     host=args.host, port=args.port)
    pve.time_scale = args.time_scale
    pve.max_requests = 1000000
    if args.token_id:
        pve.apitokens[args.token_id] = os.environ.get('HARNESS_TOKEN_SECRET', '')
    try:
        certfile, keyfile, _ = make_cert(args.certdir, hosts=(args.host,))
        await pve.start(certfile, keyfile)
    except Exception as e:  # the caller shows this line to the user
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
        seq = None
        try:
            cmd = json.loads(line)
            seq = cmd.pop('seq', None)
            answer = {'ok': True, 'result': await run(pve, cmd)}
        except Exception as e:  # reported to the caller, which fails with it
            answer = {'ok': False, 'error': '{0}: {1}'.format(type(e).__name__, e)}
        answer['seq'] = seq
        sys.stdout.write(json.dumps(answer, default=str) + '\n')
        sys.stdout.flush()
    await pve.stop()


if __name__ == '__main__':
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass

#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""jit_paths.py [director_bpf.bpf.o]: instructions per packet path of drover_director.

Timings on a shared 2-vCPU machine move 2-4x with the load; instruction
counts do not. This loads the director object (bpftool prog loadall, into a
private bpffs directory removed on exit), reads the verifier's rewritten
program (`bpftool prog dump xlated`, map lookups of arrays already inlined)
and the x86-64 JIT image (BPF_OBJ_GET_INFO_BY_FD, disassembled by objdump),
then runs the xlated program in a small emulator on the bench's packets,
with every map element holding what bench_director publishes (a VIP in
every VIP-index slot, version-3 generation config with source addresses,
rows {0, 1}, proxies of the packet's family). The conditional branches
that run takes select the path through the JIT image, whose instructions
are counted to the return. Prints `BENCH director_{bpf,x86}_insns_<path>`,
and the BPF instructions of each path by stage (STAGES) as comments.
Needs root, bpftool, objdump (binutils) and an x86-64 kernel with the JIT on.
"""
import ctypes
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile

PROG = 'drover_director'
# Stages of a packet's path: each begins where the program first names its
# map (loads the map's address), calls its helper or, for the hash, reads
# the keyed SipHash state (drover_gen_config.sip_init, value offset 72).
# A stage the path never reaches is left out.
STAGES = [
    ('parse', None, 'entry to the VIP index read: live half of the '
     'VIP index, Ethernet/IP/L4 checks, slot hash'),
    ('vip', 'drover_vip_idx', 'VIP index slot read and compare, the stats lookup '
     'and RX counter (non-VIP: and the NON_VIP counter and return)'),
    ('gen', 'drover_active', 'live generation and its config, the flow message'),
    ('hash', 'sip_init', 'SipHash-1-3 rounds and the row index'),
    ('row', 'drover_table', 'table row, primary and secondary proxies, source check'),
    ('outer', 'bpf_xdp_adjust_head', 'bpf_xdp_adjust_head and the outer headers'),
    ('count', 'drover_vip_ctr', 'per-VIP and per-proxy counters, return'),
]
SIP_INIT_OFF = 72  # offsetof(struct drover_gen_config, sip_init)
ARRAY_VALUE_OFF = 312  # offsetof(struct bpf_array, value): seen in the xlated lookups
BPF_OBJ_GET, BPF_OBJ_GET_INFO_BY_FD, SYS_BPF = 7, 15, 321
M64 = (1 << 64) - 1


def die(msg):
    sys.exit(f'jit_paths: {msg}')


def sh(*cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        die(f'{" ".join(cmd)}: {r.stderr.strip() or "exit " + str(r.returncode)}')
    return r.stdout


def bpf(cmd, attr):
    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(attr, 128)
    rc = libc.syscall(SYS_BPF, cmd, buf, 128)
    if rc < 0:
        die(f'bpf({cmd}): {os.strerror(ctypes.get_errno())}')
    return rc


def jit_image(pin):
    """The JIT image of the pinned program (bpftool built without libbfd
    cannot dump it): BPF_OBJ_GET_INFO_BY_FD for jited_prog_len (offset 16),
    then again with a buffer in jited_prog_insns (offset 24)."""
    path = ctypes.create_string_buffer(pin.encode())
    fd = bpf(BPF_OBJ_GET, struct.pack('=QII', ctypes.addressof(path), 0, 0))
    try:
        info = ctypes.create_string_buffer(256)
        bpf(BPF_OBJ_GET_INFO_BY_FD, struct.pack('=IIQ', fd, 256, ctypes.addressof(info)))
        n = struct.unpack_from('=I', info, 16)[0]
        if n == 0:
            die('no JIT image (net.core.bpf_jit_enable = 0?)')
        image = ctypes.create_string_buffer(n)
        info = ctypes.create_string_buffer(256)
        struct.pack_into('=IIQ', info, 16, n, 0, ctypes.addressof(image))
        bpf(BPF_OBJ_GET_INFO_BY_FD, struct.pack('=IIQ', fd, 256, ctypes.addressof(info)))
        return image.raw[:n]
    finally:
        os.close(fd)


def load(obj):
    """(xlated text, {map id: map info}, [(addr, mnemonic, operands)] of the JIT image)."""
    pin_dir = tempfile.mkdtemp(prefix='drover-jit-paths-', dir='/sys/fs/bpf')
    os.rmdir(pin_dir)  # bpftool creates it
    try:
        sh('bpftool', 'prog', 'loadall', obj, pin_dir)
        pin = os.path.join(pin_dir, PROG)
        xlated = sh('bpftool', 'prog', 'dump', 'xlated', 'pinned', pin)
        ids = json.loads(sh('bpftool', '-j', 'prog', 'show', 'pinned', pin))['map_ids']
        maps = {i: json.loads(sh('bpftool', '-j', 'map', 'show', 'id', str(i))) for i in ids}
        image = jit_image(pin)
    finally:
        shutil.rmtree(pin_dir, ignore_errors=True)
    with tempfile.NamedTemporaryFile(suffix='.bin') as f:
        f.write(image)
        f.flush()
        dis = sh('objdump', '-b', 'binary', '-m', 'i386:x86-64', '-D', f.name)
    x86 = []
    for line in dis.splitlines():
        m = re.match(r'\s*([0-9a-f]+):\t[0-9a-f ]+\t(\S+)\s*(.*)$', line)
        if m:
            x86.append((int(m.group(1), 16), m.group(2), m.group(3)))
    return xlated, maps, x86


# ---- what bench_director publishes, element by element


def ip(fam, text):
    return socket.inet_pton(socket.AF_INET if fam == 4 else socket.AF_INET6, text)


def packet(fam, dst):
    """Ethernet + IP + TCP SYN 40000 -> 443, as bench_director sends."""
    eth = bytes(6) + bytes(6) + (b'\x08\x00' if fam == 4 else b'\x86\xdd')
    tcp = struct.pack('!HHIIBBHHH', 40000, 443, 1, 0, 5 << 4, 0x02, 65535, 0, 0)
    if fam == 4:
        hdr = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 40, 0, 0, 64, 6, 0,
                          ip(4, '198.51.100.7'), ip(4, dst))
    else:
        hdr = struct.pack('!IHBB16s16s', 0x60000000, 20, 6, 64, ip(6, '2001:db8:99::7'), ip(6, dst))
    return eth + hdr + tcp


def element(name, size, fam):
    e = bytearray(size)
    if name == 'drover_vip_idx':  # drover_vip_slot: key, flags USED, vip_id 1
        vip = ip(4, '192.0.2.5') + bytes(12) if fam == 4 else ip(6, '2001:db8::5')
        e[:24] = vip + struct.pack('=HBBHH', socket.htons(443), 6, fam, 1, 1)
    elif name == 'drover_gen_cfg':  # version, src_v4 (offset 36), src_v6 (40)
        struct.pack_into('=I', e, 0, 3)
        e[36:40] = ip(4, '10.200.0.1')
        e[40:56] = ip(6, 'fd00:200::1')
    elif name == 'drover_table':
        struct.pack_into('=HH', e, 0, 0, 1)
    elif name == 'drover_proxies':
        e[:16] = ip(4, '10.1.0.10') + bytes(12) if fam == 4 else ip(6, 'fd00:1::10')
        e[16] = fam
    return bytes(e)


# ---- the emulator: values are ints or Ptr(region, offset)


class Ptr:
    def __init__(self, region, off):
        self.region, self.off = region, off

    def __add__(self, v):
        return Ptr(self.region, self.off + v)


SIZES = {'u8': 1, 'u16': 2, 'u32': 4, 'u64': 8}
ALU = {'+': lambda a, b: a + b, '-': lambda a, b: a - b, '*': lambda a, b: a * b,
       '&': lambda a, b: a & b, '|': lambda a, b: a | b, '^': lambda a, b: a ^ b}


def signed(x, bits=64):
    return x - (1 << bits) if x >> (bits - 1) else x


class Machine:
    def __init__(self, prog, maps, fam, dst):
        self.prog, self.maps = prog, maps
        pkt = bytes(256) + packet(fam, dst)  # 256 bytes of headroom
        self.mem = {'stack': bytearray(512), 'pkt': bytearray(pkt)}
        for mid, m in maps.items():
            # array maps keep their values 8-byte aligned (drover_proxy: 20
            # bytes in a 24-byte stride, as the verifier's inlined lookup
            # multiplies by)
            stride = (m['bytes_value'] + 7) & ~7
            e = element(m['name'], m['bytes_value'], fam).ljust(stride, b'\0')
            self.mem[mid] = bytearray(e * m['max_entries'])
        self.head, self.end = 256, len(pkt)
        self.spilled = {}  # pointers stored on the stack
        self.r = [0] * 11
        self.r[1], self.r[10] = Ptr('ctx', 0), Ptr('stack', 512)
        self.count, self.marks = 0, {}  # stage marker -> instructions run before it

    def mark(self, name):
        self.marks.setdefault(name, self.count)

    def where(self, p):
        """(buffer, offset) of a pointer into a map value, the stack or the packet."""
        if isinstance(p.region, tuple):  # ('map', id): the map object, values from 312 on
            return self.mem[p.region[1]], p.off - ARRAY_VALUE_OFF
        return self.mem[p.region], p.off

    def load(self, p, size):
        if (p.region, p.off) in self.spilled:
            return self.spilled[(p.region, p.off)]
        if p.region == 'ctx':
            return Ptr('pkt', {0: self.head, 8: self.end}[p.off])
        if (isinstance(p.region, tuple) and self.maps[p.region[1]]['name'] == 'drover_gen_cfg'
                and p.off - ARRAY_VALUE_OFF == SIP_INIT_OFF):
            self.mark('sip_init')
        if isinstance(p.region, tuple) and self.maps[p.region[1]]['type'].startswith('percpu'):
            # the per-CPU pointer of element i; the value is this CPU's copy
            i = (p.off - ARRAY_VALUE_OFF) // 8
            return Ptr(('map', p.region[1]), ARRAY_VALUE_OFF + i * self.maps[p.region[1]]['bytes_value'])
        buf, off = self.where(p)
        return int.from_bytes(buf[off:off + size], 'little')

    def store(self, p, size, v):
        if isinstance(v, Ptr):
            self.spilled[(p.region, p.off)] = v
            return
        self.spilled.pop((p.region, p.off), None)
        buf, off = self.where(p)
        buf[off:off + size] = (v & ((1 << (8 * size)) - 1)).to_bytes(size, 'little')

    def val(self, tok):
        if re.match(r'^[rw]\d+$', tok):
            v = self.r[int(tok[1:])]
            return v & 0xffffffff if tok[0] == 'w' and isinstance(v, int) else v
        if self.wide:
            return int(tok, 0) & M64
        # bpftool prints the 32-bit immediate; outside ld_imm64 the CPU
        # sign-extends it (`if r1 s> 0xffffffff` compares with -1)
        return signed(int(tok, 0) & 0xffffffff, 32) & M64

    def cond(self, a, op, b, bits=64):
        if isinstance(a, Ptr) and isinstance(b, Ptr):
            a, b = a.off, b.off
        elif isinstance(a, Ptr) or isinstance(b, Ptr):  # a null check
            a, b = (1 if isinstance(x, Ptr) else x for x in (a, b))
        if bits == 32:  # jmp32: the low halves of both
            a, b = a & 0xffffffff, b & 0xffffffff
        sa, sb = signed(a, bits), signed(b, bits)
        return {'==': a == b, '!=': a != b, '>': a > b, '>=': a >= b, '<': a < b, '<=': a <= b,
                '&': (a & b) != 0, 's>': sa > sb, 's>=': sa >= sb, 's<': sa < sb, 's<=': sa <= sb}[op]

    def alu(self, w, d, op, b):
        a = self.r[d]
        bits = 32 if w == 'w' else 64
        if op == '':
            return b & 0xffffffff if w == 'w' and isinstance(b, int) else b
        if isinstance(a, Ptr) and op in '+-' and isinstance(b, int):
            return a + (signed(b) if op == '+' else -signed(b))
        if isinstance(a, Ptr) and op == '-' and isinstance(b, Ptr):
            return a.off - b.off
        if isinstance(b, Ptr) and op == '+':
            return b + signed(a)
        if isinstance(a, Ptr) or isinstance(b, Ptr):
            raise ValueError(f'pointer arithmetic {op}')
        a &= (1 << bits) - 1
        sh_ = b & (bits - 1)
        if op in ALU:
            res = ALU[op](a, b)
        elif op == '<<':
            res = a << sh_
        elif op == '>>':
            res = a >> sh_
        elif op == 's>>':
            res = signed(a, bits) >> sh_
        else:
            raise ValueError(f'operator {op}')
        return res & ((1 << bits) - 1)

    def step(self, pc, txt):
        """Run one instruction; the next pc, or None at exit. Conditional
        branches append their outcome to self.taken."""
        nxt = pc + 1
        m = re.match(r'^if ([rw]\d+) (\S+) (\S+) goto pc([+-]\d+)$', txt)
        if m:
            t = self.cond(self.val(m.group(1)), m.group(2), self.val(m.group(3)),
                          32 if m.group(1)[0] == 'w' else 64)
            self.taken.append(t)
            return nxt + int(m.group(4)) if t else nxt
        if m := re.match(r'^goto pc([+-]\d+)$', txt):
            return nxt + int(m.group(1))
        if txt == 'exit':
            return None
        if m := re.match(r'^call (\w+)', txt):
            if m.group(1) != 'bpf_xdp_adjust_head':
                raise ValueError(f'call {m.group(1)} (not on a benched path)')
            self.mark(m.group(1))
            # the helper's offset is an int: with ALU32 (-mcpu=v3) clang
            # leaves it in the low half of r2 without sign-extending it
            self.head += signed(self.val('r2') & 0xffffffff, 32)
            self.r[0:6] = [0] * 6
            return nxt
        if m := re.match(r'^\*\((u\d+) \*\)\((r\d+) ([+-]\d+)\) = (\S+)$', txt):
            self.store(self.val(m.group(2)) + int(m.group(3)), SIZES[m.group(1)], self.val(m.group(4)))
            return nxt
        if m := re.match(r'^[rw](\d+) = \*\((u\d+) \*\)\((r\d+) ([+-]\d+)\)$', txt):
            self.r[int(m.group(1))] = self.load(self.val(m.group(3)) + int(m.group(4)), SIZES[m.group(2)])
            return nxt
        if m := re.match(r'^[rw](\d+) = map\[id:(\d+)\]$', txt):
            self.mark(self.maps[int(m.group(2))]['name'])
            self.r[int(m.group(1))] = Ptr(('map', int(m.group(2))), 0)
            return nxt + 1  # ld_imm64 takes two slots
        if m := re.match(r'^[rw](\d+) = map\[id:(\d+)\]\[0\]\+(\d+)$', txt):
            # the address of a global (.rodata): a pointer into its value
            self.r[int(m.group(1))] = Ptr(('map', int(m.group(2))), ARRAY_VALUE_OFF + int(m.group(3)))
            return nxt + 1
        if m := re.match(r'^[rw](\d+) = (0x[0-9a-f]+)$', txt) if self.wide else None:
            self.r[int(m.group(1))] = int(m.group(2), 16)
            return nxt + 1
        if m := re.match(r'^[rw](\d+) = (be|le)(\d+) [rw]\d+$', txt):
            bits = int(m.group(3))
            v = self.r[int(m.group(1))] & ((1 << bits) - 1)
            if m.group(2) == 'be':
                v = int.from_bytes(v.to_bytes(bits // 8, 'little'), 'big')
            self.r[int(m.group(1))] = v
            return nxt
        if m := re.match(r'^([rw])(\d+) = -([rw]\d+)$', txt):
            self.r[int(m.group(2))] = -self.val(m.group(3)) & (M64 if m.group(1) == 'r' else 0xffffffff)
            return nxt
        if m := re.match(r'^([rw])(\d+) (\S*)= (\S+)$', txt):
            self.r[int(m.group(2))] = self.alu(m.group(1), int(m.group(2)), m.group(3), self.val(m.group(4)))
            return nxt
        raise ValueError('unknown instruction')

    def run(self):
        """(action, BPF instructions run, outcomes of the conditional branches)."""
        pc, self.taken = 0, []
        while pc is not None:
            op, txt = self.prog[pc]
            self.wide = op == '18'  # ld_imm64 of a constant
            try:
                pc = self.step(pc, txt)
            except (ValueError, KeyError) as e:
                die(f'cannot emulate instruction {pc} ({txt}): {e}')
            self.count += 1
        return self.r[0], self.count, self.taken

    def stages(self):
        """[(stage, BPF instructions)] along the path just run, in STAGES order."""
        starts = [(0, 'parse')] + [(self.marks[m], n) for n, m, _ in STAGES[1:] if m in self.marks]
        if starts != sorted(starts):
            die(f'stages met out of order: {starts}')
        ends = [b for b, _ in starts[1:]] + [self.count]
        return [(n, e - b) for (b, n), e in zip(starts, ends)]


def check_encap(name, mach, fam, action):
    """A forwarded packet grew by the outer headers (44 or 88 bytes), is
    addressed to the proxy and carries two hops (rows are {0, 1}, both
    proxies of the packet's family): the emulation ran the program's real
    path."""
    if action != 3:
        return
    added, out = 256 - mach.head, mach.mem['pkt'][mach.head:mach.end]
    dst = out[30:34] if fam == 4 else out[38:54]
    hops = out[48] if fam == 4 else out[68]
    if (added != (44 if fam == 4 else 88) or dst != element('drover_proxies', 24, fam)[:len(dst)]
            or hops != 2):
        die(f'{name}: emulated packet not encapsulated to the proxy with two hops '
            f'({added} bytes added, hop count {hops})')


def walk_jit(x86, taken):
    """x86 instructions from the entry to the return, each conditional jump
    going the way the emulated BPF branch of the same rank went (the JIT
    emits one conditional jump per BPF conditional branch, in order)."""
    index = {a: i for i, (a, _, _) in enumerate(x86)}
    i, n, k = 0, 0, 0
    while True:
        _, mn, ops = x86[i]
        n += 1
        if mn.startswith('ret'):
            break
        if mn.startswith('j'):
            target = int(ops.split()[0], 16)
            if mn == 'jmp' and target not in index:  # the return thunk
                break
            if mn != 'jmp':
                k += 1
                if not taken[k - 1]:
                    i += 1
                    continue
            i = index[target]
            continue
        i += 1
    if k != len(taken):
        die(f'JIT walk took {k} conditional jumps, the BPF run {len(taken)}: the layouts differ')
    return n


PATHS = [('syn', 4, '192.0.2.5', 3), ('nonvip', 4, '192.0.2.200', 2),
         ('v6', 6, '2001:db8::5', 3), ('nonvip_v6', 6, '2001:db8::ffff', 2)]


def main():
    obj = sys.argv[1] if len(sys.argv) > 1 else 'build/release/xdp-lb/director_bpf.bpf.o'
    if os.geteuid() != 0:
        die('needs root (loads the program)')
    if not os.path.exists(obj):
        die(f'{obj}: no such object (build the release preset first)')
    xlated, maps, x86 = load(obj)
    prog = {}
    for line in xlated.splitlines():
        if m := re.match(r'\s*(\d+): \(([0-9a-f]{2})\) (.*)$', line):
            prog[int(m.group(1))] = (m.group(2), m.group(3).strip())
    print(f'# {PROG} from {obj}: {len(prog)} BPF instructions after the verifier, '
          f'{len(x86)} x86-64 in the JIT image')
    print('# instructions run per packet, from entry to return (emulated; see jit_paths.py)')
    print('# stages: ' + '; '.join(f'{n}: {d}' for n, _, d in STAGES))
    for name, fam, dst, want in PATHS:
        mach = Machine(prog, maps, fam, dst)
        action, nbpf, taken = mach.run()
        if action != want:
            die(f'{name}: emulated action {action}, bench expects {want}')
        check_encap(name, mach, fam, action)
        print(f'BENCH director_bpf_insns_{name} {nbpf}')
        print(f'BENCH director_x86_insns_{name} {walk_jit(x86, taken)}')
        print(f'# {name} BPF by stage: ' + ' '.join(f'{n} {k}' for n, k in mach.stages()))


if __name__ == '__main__':
    main()

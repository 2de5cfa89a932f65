"""Listening TCP sockets from /proc (Linux): which addresses a port is bound to, and every socket a
process tree listens on. Standard library only (scripts/e2e/selftest.py imports it)."""

import os
import socket

import procs


def _listening_sockets():
    """Every listening TCP socket of this network namespace: [(address, port, inode)]."""
    found = []
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    address, port_hex = fields[1].split(":")
                    if fields[3] != "0A":  # 0A = LISTEN
                        continue
                    if width == 8:
                        text = socket.inet_ntop(socket.AF_INET, bytes.fromhex(address)[::-1])
                    else:
                        raw = b"".join(bytes.fromhex(address[i : i + 8])[::-1] for i in range(0, 32, 8))
                        text = socket.inet_ntop(socket.AF_INET6, raw)
                    found.append((text, int(port_hex, 16), int(fields[9])))
        except OSError:
            pass
    return found


def listening_addresses(port):
    """Local addresses (as 'a.b.c.d') with a TCP socket listening on `port` (IPv4 and IPv6)."""
    return {address for address, p, _ in _listening_sockets() if p == port}


def _socket_inodes(pid):
    """Inodes of the sockets open in `pid` and its descendants."""
    pids, inodes = [pid], set()
    while pids:
        current = pids.pop()
        try:
            fds = os.listdir(f"/proc/{current}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{current}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
        pids += procs.children_of(current)
    return inodes


def is_loopback(address):
    return address.startswith("127.") or address in ("::1", "::ffff:127.0.0.1")


def listening_sockets_of(pid):
    """'address:port' of every TCP socket `pid` (or a descendant) listens on, whatever the port:
    an emulator that opened an extra listener on 0.0.0.0 shows up here even if its configured
    ports are on 127.0.0.1."""
    inodes = _socket_inodes(pid)
    return sorted(f"{a}:{p}" for a, p, inode in _listening_sockets() if inode in inodes)

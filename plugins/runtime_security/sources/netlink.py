"""The few netlink pieces the process connector and audit sources share: message headers,
the error message, and the exact per-socket drop counter the kernel keeps."""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator

NLMSG_HDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
NLMSG_NOOP = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
SOL_NETLINK = 270
NETLINK_NO_ENOBUFS = 5


def nlmsg(msg_type: int, payload: bytes, flags: int = NLM_F_REQUEST, seq: int = 0) -> bytes:
    return NLMSG_HDR.pack(NLMSG_HDR.size + len(payload), msg_type, flags, seq, 0) + payload


def iter_messages(data: bytes) -> Iterator[tuple[int, int, int, bytes]]:
    """Yield (type, flags, seq, payload) for each message of a datagram."""
    offset = 0
    while offset + NLMSG_HDR.size <= len(data):
        length, msg_type, flags, seq, _pid = NLMSG_HDR.unpack_from(data, offset)
        if length < NLMSG_HDR.size:
            break
        yield msg_type, flags, seq, data[offset + NLMSG_HDR.size : offset + length]
        offset += (length + 3) & ~3


def nlmsg_error_code(payload: bytes) -> int:
    """The (positive) errno of an NLMSG_ERROR payload, 0 for an ACK."""
    code: int = struct.unpack_from("=i", payload)[0]
    return -code


def socket_drops(sock: socket.socket) -> int:
    """The Drops column of /proc/net/netlink for this socket: the exact number of messages the
    kernel could not queue to it (ENOBUFS only says that *some* were lost)."""
    inode = os.fstat(sock.fileno()).st_ino
    try:
        with open("/proc/net/netlink") as f:
            next(f)
            for line in f:
                cols = line.split()
                if len(cols) >= 10 and int(cols[9]) == inode:
                    return int(cols[8])
    except (OSError, ValueError):
        pass
    return 0


def grow_receive_buffer(sock: socket.socket, size: int) -> int:
    """Raise the receive buffer past rmem_max when we may (CAP_NET_ADMIN); returns the size the
    kernel granted."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, 33, size)  # SO_RCVBUFFORCE
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    granted: int = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    return granted

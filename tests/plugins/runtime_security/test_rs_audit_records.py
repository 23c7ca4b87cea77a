"""Audit record decoding: quoting and hex encoding, sockaddr families, grouping by serial."""

from __future__ import annotations

import socket

from hypothesis import given
from hypothesis import strategies as st

from plugins.runtime_security.sources.audit_records import (
    AUDIT_EOE,
    AUDIT_PATH,
    AUDIT_SYSCALL,
    AuditAssembler,
    decode_sockaddr,
    parse_record,
)


def test_quoted_and_hex_encoded_values():
    text = (
        "audit(1700000000.250:42): item=0 name=2F746D702F6120622063 inode=12 "
        'mode=0100644 nametype=NORMAL comm="cat" key=(null)'
    )
    stamp, serial, fields = parse_record(text)
    assert (stamp, serial) == (1700000000.25, 42)
    assert fields["name"] == "/tmp/a b c"
    assert fields["comm"] == "cat"
    assert fields["mode"] == "0100644"
    assert fields["key"] == "(null)"


def test_a_record_without_header_is_ignored():
    assert parse_record("garbage") is None


def test_sockaddr_families():
    assert decode_sockaddr("0200C3500A000001" + "00" * 8) == {
        "family": socket.AF_INET,
        "ip": "10.0.0.1",
        "port": 50000,
    }
    v6 = "0A00" + "1F90" + "00000000" + "00" * 15 + "01" + "00000000"
    assert decode_sockaddr(v6) == {"family": socket.AF_INET6, "ip": "::1", "port": 8080}
    unix = "0100" + b"/run/x.sock".hex() + "00"
    assert decode_sockaddr(unix) == {"family": socket.AF_UNIX, "path": "/run/x.sock"}
    assert decode_sockaddr("zz") == {"family": 0}
    assert decode_sockaddr("11") == {"family": 0}


def test_records_group_by_serial_until_eoe():
    assembler = AuditAssembler()
    assert assembler.add(AUDIT_SYSCALL, "audit(1.000:7): syscall=90 pid=3") == []
    assert assembler.add(AUDIT_PATH, 'audit(1.000:7): item=0 name="/x"') == []
    done = assembler.add(AUDIT_EOE, "audit(1.000:7): ")
    assert done == [
        (
            1.0,
            [
                (AUDIT_SYSCALL, {"syscall": "90", "pid": "3"}),
                (AUDIT_PATH, {"item": "0", "name": "/x"}),
            ],
        )
    ]


@given(st.text(max_size=300))
def test_parser_never_raises_on_arbitrary_text(text):
    parse_record("audit(1.000:1): " + text)
    parse_record(text)


@given(st.text(alphabet="0123456789abcdefABCDEF", max_size=80))
def test_sockaddr_decoder_never_raises(hexdata):
    assert "family" in decode_sockaddr(hexdata)

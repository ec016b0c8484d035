#!/usr/bin/env python3
"""Writes the seed corpus for tests/fuzz (frame/, messages/ and proxy_header/), laid out from
docs/PROTOCOL.md and HAProxy's proxy-protocol.txt.

Written independently of the C++ encoder on purpose, so the corpus also cross-checks the spec.
Run from anywhere: python3 tests/fuzz/corpus/generate.py  (rewrites the seed files; deterministic).
"""
import pathlib
import struct

HERE = pathlib.Path(__file__).resolve().parent
PREFACE = b"\x00DPX"

HELLO, WELCOME, ERROR, PING, PONG, AUTH, AUTH_OK = 0x01, 0x02, 0x03, 0x04, 0x05, 0x08, 0x09
UPPER_REQ, UPPER_REP = 0x10, 0x11
EXEC_START, STDIN_DATA, STDIN_EOF, STDOUT_DATA, STDERR_DATA = 0x20, 0x21, 0x22, 0x23, 0x24
SIGNAL, WINDOW_SIZE, EXIT, STATS_REQ, STATS_REP = 0x25, 0x26, 0x27, 0x30, 0x31
STDIN_WINDOW = 0x28
AUTH_START, AUTH_CHALLENGE, AUTH_PROOF = 0x0A, 0x0B, 0x0C
NONCE_C, NONCE_S, PROOF_S, PROOF_C = bytes(range(32)), bytes(range(32, 64)), b"\xaa" * 32, b"\x55" * 32


def s(b):
    if isinstance(b, str):
        b = b.encode()
    return struct.pack(">I", len(b)) + b


def frame(t, payload=b"", flags=0):
    return struct.pack(">IBB", len(payload), t, flags) + payload


def hello(lo=1, hi=1, agent="duplex/0.1"):
    return struct.pack(">HH", lo, hi) + s(agent)


def welcome(v=1, max_frame=1 << 20, agent="duplex/0.1"):
    return struct.pack(">HI", v, max_frame) + s(agent)


def error(code, text):
    return struct.pack(">H", code) + s(text)


def exec_start(argv, env=(), cwd="", timeout_ms=0, rows=0, cols=0, term="", shell=False, pty=False,
               flags=None):
    if flags is None:
        flags = (1 if shell else 0) | (2 if pty else 0)
    out = struct.pack(">BH", flags, len(argv)) + b"".join(s(a) for a in argv)
    out += struct.pack(">H", len(env)) + b"".join(s(k) + s(v) for k, v in env)
    return out + s(cwd) + struct.pack(">IHH", timeout_ms, rows, cols) + s(term)


def exit_(how=0, code=0, duration_us=1234, limit=0):
    return struct.pack(">BiQB", how, code, duration_us, limit)


EXEC_LS = exec_start(["ls", "-l", "/tmp"], env=[("LANG", "C")], cwd="/", timeout_ms=5000)
EXEC_PTY = exec_start(["echo hi; exit 3"], shell=True, pty=True, rows=24, cols=80, term="xterm")

FRAME = {
    "preface_hello": PREFACE + frame(HELLO, hello()),
    "preface_only": PREFACE,
    "preface_garbage": PREFACE + b"\xff\xfe garbage",
    "hello_welcome": frame(HELLO, hello()) + frame(WELCOME, welcome()),
    "error": frame(ERROR, error(16, "protocol version not supported")),
    "ping_pong": frame(PING, b"\x00\x01") + frame(PONG, b"\x00\x01"),
    "auth_flow": frame(AUTH, s(b"tok\x00en")) + frame(AUTH_OK, s("uid 1000")),
    "auth_exchange": frame(AUTH_START, NONCE_C) + frame(AUTH_CHALLENGE, NONCE_S + PROOF_S)
                     + frame(AUTH_PROOF, PROOF_C) + frame(AUTH_OK, s("token") + struct.pack(">I", 1 << 20)),
    "upper_pipelined": PREFACE + frame(HELLO, hello()) + frame(UPPER_REQ, b"hi")
                       + frame(UPPER_REQ, b"") + frame(UPPER_REP, b"HI"),
    "exec_session": frame(EXEC_START, EXEC_LS) + frame(STDIN_DATA, b"input\n") + frame(STDIN_EOF)
                    + frame(WINDOW_SIZE, struct.pack(">HH", 50, 132)) + frame(SIGNAL, struct.pack(">i", 2))
                    + frame(STDOUT_DATA, b"out") + frame(STDERR_DATA, b"err") + frame(EXIT, exit_()),
    "exec_pty": frame(EXEC_START, EXEC_PTY),
    "stats": frame(STATS_REQ) + frame(STATS_REP, b'{"connections":1}'),
    "empty_payload": frame(STDIN_EOF),
    "unknown_type": frame(0x7F, b"??"),
    "truncated_header": frame(UPPER_REQ, b"abc")[:4],
    "truncated_payload": frame(UPPER_REQ, b"abcdef")[:9],
    "oversized": struct.pack(">IBB", (1 << 20) + 1, UPPER_REQ, 0) + b"x" * 16,
    "oversized_4g": b"\xff\xff\xff\xff\x10\x00",
    "bad_flags": frame(PING, b"x", flags=0x80),
    "bad_payloads": frame(HELLO, hello()[:3]) + frame(SIGNAL, struct.pack(">i", 65))
                    + frame(EXIT, exit_(how=3)) + frame(EXEC_START, b"\x00\x10\x00"),
    "raw_text": b"hello\n",
    "garbage": bytes(range(256)),
}

MESSAGES = {
    "hello": bytes([HELLO]) + hello(),
    "hello_range": bytes([HELLO]) + hello(1, 0xFFFF, ""),
    "hello_truncated": bytes([HELLO]) + hello()[:7],
    "hello_trailing": bytes([HELLO]) + hello() + b"\x00",
    "welcome": bytes([WELCOME]) + welcome(),
    "error": bytes([ERROR]) + error(34, "authentication failed"),
    "error_unknown_code": bytes([ERROR]) + error(0xFFFF, ""),
    "auth_binary": bytes([AUTH]) + s(b"\x00\x01\xfftoken"),
    "auth_empty": bytes([AUTH]) + s(b""),
    "auth_ok": bytes([AUTH_OK]) + s("uid 1000") + struct.pack(">I", 1 << 20),
    "auth_ok_no_max_frame": bytes([AUTH_OK]) + s("uid 1000"),
    "auth_start": bytes([AUTH_START]) + NONCE_C,
    "auth_start_short": bytes([AUTH_START]) + NONCE_C[:31],
    "auth_challenge": bytes([AUTH_CHALLENGE]) + NONCE_S + PROOF_S,
    "auth_challenge_trailing": bytes([AUTH_CHALLENGE]) + NONCE_S + PROOF_S + b"\x00",
    "auth_proof": bytes([AUTH_PROOF]) + PROOF_C,
    "auth_proof_empty": bytes([AUTH_PROOF]),
    "exec_ls": bytes([EXEC_START]) + EXEC_LS,
    "exec_pty": bytes([EXEC_START]) + EXEC_PTY,
    "exec_bad_flags": bytes([EXEC_START]) + exec_start(["x"], flags=0x04),
    "exec_argc0": bytes([EXEC_START]) + exec_start([]),
    "exec_argc_huge": bytes([EXEC_START]) + b"\x00\x10\x00" + s("x"),
    "exec_env_bad_key": bytes([EXEC_START]) + exec_start(["env"], env=[("A=B", "1")]),
    "exec_env_empty_key": bytes([EXEC_START]) + exec_start(["env"], env=[("", "1")]),
    "exec_nul_arg": bytes([EXEC_START]) + exec_start(["a\x00b"]),
    "exec_truncated": bytes([EXEC_START]) + EXEC_LS[:-3],
    "signal": bytes([SIGNAL]) + struct.pack(">i", 15),
    "signal_zero": bytes([SIGNAL]) + struct.pack(">i", 0),
    "signal_negative": bytes([SIGNAL]) + struct.pack(">i", -1),
    "window_size": bytes([WINDOW_SIZE]) + struct.pack(">HH", 24, 80),
    "stdin_window": bytes([STDIN_WINDOW]) + struct.pack(">I", 256 * 1024),
    "exit_signaled": bytes([EXIT]) + exit_(how=1, code=9, limit=1),
    "exit_not_started": bytes([EXIT]) + exit_(how=2, code=2),
    "exit_bad_how": bytes([EXIT]) + exit_(how=3),
    "exit_bad_limit": bytes([EXIT]) + exit_(limit=4),
    "upper_request": bytes([UPPER_REQ]) + b"hi",
    "unknown_type": b"\x7f\x00\x01",
}


# PROXY protocol headers (HAProxy's doc/proxy-protocol.txt, 2.1 and 2.2), each followed by a
# client's first bytes where that matters.
V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2(ver_cmd, fam, body):
    return V2_SIG + struct.pack(">BBH", ver_cmd, fam, len(body)) + body


def tlv(t, value):
    return struct.pack(">BH", t, len(value)) + value


V4_BODY = bytes([203, 0, 113, 7, 198, 51, 100, 1]) + struct.pack(">HH", 4660, 443)
V6_BODY = bytes.fromhex("20010db8" + "00" * 11 + "07" + "00" * 15 + "01") + struct.pack(">HH", 65535, 80)
PROXY_HEADER = {
    "v1_tcp4": b"PROXY TCP4 203.0.113.7 198.51.100.1 4660 443\r\nhello\n",
    "v1_tcp6": b"PROXY TCP6 2001:db8::7 ::1 65535 80\r\n" + PREFACE,
    "v1_unknown": b"PROXY UNKNOWN\r\n",
    "v1_unknown_rest": b"PROXY UNKNOWN ::1 whatever 1 2\r\n",
    "v1_no_crlf": b"PROXY UNKNOWN " + b"x" * 100,
    "v1_bad_port": b"PROXY TCP4 203.0.113.7 198.51.100.1 65536 443\r\n",
    "v1_lf_only": b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
    "v2_inet": v2(0x21, 0x11, V4_BODY) + PREFACE,
    "v2_inet6_tlvs": v2(0x21, 0x21, V6_BODY + tlv(1, b"h2") + tlv(2, b"example.com")) + b"\x16\x03\x01",
    "v2_unix": v2(0x21, 0x31, b"/run/a.sock".ljust(108, b"\0") + b"/b".ljust(108, b"\0")),
    "v2_local": v2(0x20, 0x00, b""),
    "v2_unspec": v2(0x21, 0x00, b"any"),
    "v2_udp": v2(0x21, 0x12, V4_BODY),
    "v2_bad_version": v2(0x31, 0x11, V4_BODY),
    "v2_short_block": v2(0x21, 0x21, V4_BODY),
    "v2_tlv_overrun": v2(0x21, 0x11, V4_BODY + b"\x01\x00\x09ab"),
    "v2_huge": v2(0x21, 0x11, V4_BODY + tlv(0xEE, b"z" * 5000)),
    "v2_sig_only": V2_SIG,
    "raw": b"hello\n",
}


def write(name, files):
    d = HERE / name
    d.mkdir(exist_ok=True)
    for f in d.iterdir():
        if f.is_file():
            f.unlink()
    for k, v in files.items():
        (d / k).write_bytes(v)


if __name__ == "__main__":
    write("frame", FRAME)
    write("messages", MESSAGES)
    write("proxy_header", PROXY_HEADER)
    print(f"frame: {len(FRAME)} files, messages: {len(MESSAGES)} files, "
          f"proxy_header: {len(PROXY_HEADER)} files")

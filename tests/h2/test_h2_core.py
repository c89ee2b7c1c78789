"""fastgw._core.h2 (libnghttp2, sans-IO): frames in, events out, frames back, checked against
an independent client implementation (the `h2` library: its framing and HPACK)."""
from __future__ import annotations

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest
from hyperframe.frame import ContinuationFrame, HeadersFrame, SettingsFrame

from fastgw._core import h2 as core
from fastgw._core.h2 import (EV_CLOSED, EV_DATA, EV_END_STREAM, EV_HEADERS_TOO_LARGE,
                             EV_REQUEST, EV_RESET, EV_TRAILERS, H2Connection, H2Error)

REQ = [(":method", "GET"), (":path", "/x?y=1"), (":scheme", "https"),
       (":authority", "api.test"), ("user-agent", "t/1"), ("accept", "*/*")]


def _pair(**kw) -> tuple[H2Connection, h2.connection.H2Connection]:
    srv = H2Connection(**kw)
    cli = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True,
                                                               header_encoding=None))
    cli.initiate_connection()
    assert srv.receive(cli.data_to_send()) == []
    cli.receive_data(srv.data_to_send())
    srv.receive(cli.data_to_send())     # the client's SETTINGS ACK
    return srv, cli


def _flush(srv: H2Connection, cli: h2.connection.H2Connection) -> list:
    events = cli.receive_data(srv.data_to_send())
    back = cli.data_to_send()
    if back:
        srv.receive(back)
    return events


def test_server_settings_announce_the_named_limits():
    srv = H2Connection()
    cli = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    cli.initiate_connection()
    srv.receive(cli.data_to_send())
    ev = cli.receive_data(srv.data_to_send())
    changed = next(e for e in ev if isinstance(e, h2.events.RemoteSettingsChanged))
    s = {k: v.new_value for k, v in changed.changed_settings.items()}
    assert s[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] == core.MAX_CONCURRENT_STREAMS
    assert s[h2.settings.SettingCodes.INITIAL_WINDOW_SIZE] == core.INITIAL_WINDOW_SIZE
    assert s[h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE] == core.MAX_HEADER_LIST_SIZE
    assert s[h2.settings.SettingCodes.ENABLE_PUSH] == 0


def test_request_headers_are_decoded_including_the_hpack_dynamic_table():
    srv, cli = _pair()
    for sid in (1, 3, 5):   # repeats hit HPACK's dynamic table (RFC 7541 2.3.2)
        cli.send_headers(sid, REQ, end_stream=True)
        ev = srv.receive(cli.data_to_send())
        assert ev == [(EV_REQUEST, sid, [(n.encode(), v.encode()) for n, v in REQ], True)]


def test_response_head_and_body_reach_the_client():
    srv, cli = _pair()
    cli.send_headers(1, REQ, end_stream=True)
    srv.receive(cli.data_to_send())
    srv.send_response(1, 200, [(b"content-type", b"text/plain"), (b"x-a", b"1")])
    srv.send_data(1, b"hel")
    srv.send_data(1, b"lo", end_stream=True)
    ev = _flush(srv, cli)
    resp = next(e for e in ev if isinstance(e, h2.events.ResponseReceived))
    assert resp.headers == [(b":status", b"200"), (b"content-type", b"text/plain"),
                            (b"x-a", b"1")]
    assert b"".join(e.data for e in ev if isinstance(e, h2.events.DataReceived)) == b"hello"
    assert any(isinstance(e, h2.events.StreamEnded) for e in ev)


def test_head_only_response_and_trailers():
    srv, cli = _pair()
    cli.send_headers(1, REQ, end_stream=True)
    cli.send_headers(3, REQ, end_stream=True)
    srv.receive(cli.data_to_send())
    srv.send_response(1, 204, [], end_stream=True)
    srv.send_response(3, 200, [(b"content-type", b"application/grpc")])
    srv.send_data(3, b"\x00\x00\x00\x00\x00")
    srv.send_trailers(3, [(b"grpc-status", b"0"), (b"grpc-message", b"ok")])
    ev = _flush(srv, cli)
    ended = {e.stream_id for e in ev if isinstance(e, h2.events.StreamEnded)}
    assert ended == {1, 3}
    tr = next(e for e in ev if isinstance(e, h2.events.TrailersReceived))
    assert tr.stream_id == 3 and tr.headers == [(b"grpc-status", b"0"),
                                                (b"grpc-message", b"ok")]


def test_response_body_waits_for_the_clients_window():
    srv, cli = _pair()
    cli.send_headers(1, REQ, end_stream=True)
    srv.receive(cli.data_to_send())
    srv.send_response(1, 200, [])
    body = bytes(range(256)) * 400   # 102400 bytes > the 65535-byte initial window
    srv.send_data(1, body, end_stream=True)
    ev = cli.receive_data(srv.data_to_send())
    got = b"".join(e.data for e in ev if isinstance(e, h2.events.DataReceived))
    assert len(got) == 65535 and not any(isinstance(e, h2.events.StreamEnded) for e in ev)
    assert srv.data_to_send() == b""            # blocked by flow control, nothing more
    cli.acknowledge_received_data(len(got), 1)  # WINDOW_UPDATE on stream and connection
    srv.receive(cli.data_to_send())
    ev = cli.receive_data(srv.data_to_send())
    got += b"".join(e.data for e in ev if isinstance(e, h2.events.DataReceived))
    assert got == body and any(isinstance(e, h2.events.StreamEnded) for e in ev)


def test_streamed_response_body_resumes_when_data_arrives():
    srv, cli = _pair()
    cli.send_headers(1, REQ, end_stream=True)
    srv.receive(cli.data_to_send())
    srv.send_response(1, 200, [])
    ev = _flush(srv, cli)
    assert any(isinstance(e, h2.events.ResponseReceived) for e in ev)
    for part in (b"a", b"b"):
        srv.send_data(1, part)
        ev = _flush(srv, cli)
        assert [e.data for e in ev if isinstance(e, h2.events.DataReceived)] == [part]
    srv.send_data(1, b"", end_stream=True)
    ev = _flush(srv, cli)
    assert any(isinstance(e, h2.events.StreamEnded) for e in ev)


POST = [(":method", "POST")] + REQ[1:]


def test_request_body_events_and_manual_flow_control():
    srv, cli = _pair(manual_flow_control=True)
    cli.send_headers(1, POST)
    body = bytes(range(256)) * 255 + b"z" * 255   # 65535: the whole initial window
    for i in range(0, len(body), 16384):           # RFC 9113 4.2 default max frame size
        cli.send_data(1, body[i:i + 16384])
    ev = srv.receive(cli.data_to_send())
    assert ev[0][0] == EV_REQUEST and ev[0][3] is False
    data = b"".join(e[2] for e in ev if e[0] == EV_DATA)
    assert data == body
    # the window is used up and nothing was consumed: no WINDOW_UPDATE yet
    assert b"\x08" not in _frame_types(srv.data_to_send())
    srv.consume(1, len(data))
    assert b"\x08" in _frame_types(srv.data_to_send())
    cli.send_data(1, b"", end_stream=True)
    assert srv.receive(cli.data_to_send()) == [(EV_END_STREAM, 1)]


def test_request_trailers_and_client_reset():
    srv, cli = _pair()
    cli.send_headers(1, POST)
    cli.send_data(1, b"abc")
    cli.send_headers(1, [("grpc-timeout", "1S")], end_stream=True)
    ev = srv.receive(cli.data_to_send())
    assert (EV_TRAILERS, 1, [(b"grpc-timeout", b"1S")]) in ev
    cli.send_headers(3, REQ, end_stream=False)
    cli.reset_stream(3, error_code=8)
    ev = srv.receive(cli.data_to_send())
    assert (EV_RESET, 3, 8) in ev and (EV_CLOSED, 3, 8) in ev


def _frame_types(data: bytes) -> bytes:
    out, i = bytearray(), 0
    while i + 9 <= len(data):
        length = int.from_bytes(data[i:i + 3], "big")
        out.append(data[i + 3])
        i += 9 + length
    return bytes(out)


def _goaway_code(data: bytes) -> int | None:
    i = 0
    while i + 9 <= len(data):
        length = int.from_bytes(data[i:i + 3], "big")
        if data[i + 3] == 7:
            return int.from_bytes(data[i + 13:i + 17], "big")
        i += 9 + length
    return None


def test_bad_preface_is_a_connection_error():
    srv = H2Connection()
    with pytest.raises(H2Error):
        srv.receive(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")


def test_settings_flood_is_refused():
    srv, cli = _pair()
    f = SettingsFrame(0)
    f.settings = {0x1000 + i: 1 for i in range(core.MAX_SETTINGS + 1)}  # unknown ids
    srv.receive(f.serialize())
    assert _goaway_code(srv.data_to_send()) == core.ENHANCE_YOUR_CALM
    assert not srv.want_read and not srv.want_write   # the driver closes the connection


def test_continuation_flood_is_refused():
    srv, cli = _pair()
    enc = cli.encoder
    block = enc.encode(REQ)
    h = HeadersFrame(1)
    h.data = block[:1]
    frames = h.serialize()
    for _ in range(core.MAX_CONTINUATIONS + 1):
        c = ContinuationFrame(1)
        c.data = b""
        frames += c.serialize()
    with pytest.raises(H2Error):
        srv.receive(frames)


def test_rapid_reset_is_cut_off():
    srv, cli = _pair()
    out = b""
    sid = 1
    for _ in range(core.RESET_BURST + 50):
        cli.send_headers(sid, REQ, end_stream=False)
        cli.reset_stream(sid)
        sid += 2
        out += cli.data_to_send()
    srv.receive(out)
    assert _goaway_code(srv.data_to_send()) is not None
    assert not srv.want_read and not srv.want_write


def test_header_list_over_the_limit_is_refused():
    srv, cli = _pair(max_header_list_size=1024)
    cli.send_headers(1, REQ + [("x-big", "v" * 2000)], end_stream=True)
    ev = srv.receive(cli.data_to_send())
    assert ev == [(EV_HEADERS_TOO_LARGE, 1)]
    srv.send_response(1, 431, [], end_stream=True)
    resp = next(e for e in _flush(srv, cli) if isinstance(e, h2.events.ResponseReceived))
    assert resp.headers[0] == (b":status", b"431")
    # the connection goes on
    cli.send_headers(3, REQ, end_stream=True)
    assert srv.receive(cli.data_to_send())[0][:2] == (EV_REQUEST, 3)


def test_ping_flood_is_cut_off():
    # PINGs whose ACKs the client never reads (CVE-2019-9512): nghttp2 stops at
    # MAX_OUTBOUND_ACK queued ACKs
    from hyperframe.frame import PingFrame

    srv, cli = _pair()
    ping = PingFrame(0)
    ping.opaque_data = b"12345678"
    with pytest.raises(H2Error):
        srv.receive(ping.serialize() * (core.MAX_OUTBOUND_ACK + 10))


def test_data_beyond_the_flow_control_window_is_a_connection_error():
    from hyperframe.frame import DataFrame

    srv, cli = _pair(manual_flow_control=True)
    cli.send_headers(1, POST)
    srv.receive(cli.data_to_send())
    frames = b""
    for _ in range(5):   # 5 x 16384 > the 65535-byte window (RFC 9113 6.9.1)
        f = DataFrame(1)
        f.data = b"x" * 16384
        frames += f.serialize()
    srv.receive(frames)
    assert _goaway_code(srv.data_to_send()) == core.FLOW_CONTROL_ERROR
    assert not srv.want_read

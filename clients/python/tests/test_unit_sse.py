"""The text/event-stream decoder (pure logic, no server)."""

from sandpit._sse import SSEDecoder, ServerSentEvent, iter_events, split_lines


def events(text):
    return list(iter_events(split_lines(text)))


def test_output_then_result():
    text = (
        'event: output\ndata: {"stream": "stdout", "text": "0\\n"}\n\n'
        'event: output\ndata: {"stream": "stderr", "text": "oops"}\n\n'
        'event: result\ndata: {"exit_code": 0}\n\n'
    )
    got = events(text)
    assert [e.event for e in got] == ["output", "output", "result"]
    assert got[0].data == '{"stream": "stdout", "text": "0\\n"}'
    assert got[2].data == '{"exit_code": 0}'


def test_crlf_and_cr_line_endings():
    assert events("event: a\r\ndata: 1\r\n\r\nevent: b\rdata: 2\r\r") == [
        ServerSentEvent(event="a", data="1"),
        ServerSentEvent(event="b", data="2"),
    ]


def test_multiline_data_joined_with_newline():
    (e,) = events("data: one\ndata: two\ndata:\n\n")
    assert e.event == "message"
    assert e.data == "one\ntwo\n"


def test_only_one_space_after_colon_is_dropped():
    (e,) = events("data:  two spaces\n\n")
    assert e.data == " two spaces"
    (e,) = events("data:none\n\n")
    assert e.data == "none"


def test_comments_and_unknown_fields_ignored():
    (e,) = events(": keep-alive\nfoo: bar\nevent: output\n: another\ndata: x\n\n")
    assert (e.event, e.data) == ("output", "x")


def test_field_without_colon_and_empty_event_not_dispatched():
    # "data" alone is a data line with an empty value; an event with no data line is dropped
    assert events("event: lonely\n\n") == []
    (e,) = events("data\n\n")
    assert e.data == ""


def test_event_type_resets_after_dispatch():
    got = events("event: output\ndata: 1\n\ndata: 2\n\n")
    assert [e.event for e in got] == ["output", "message"]


def test_id_and_retry():
    (e,) = events("id: 7\nretry: 1500\nretry: soon\ndata: x\n\n")
    assert e.id == "7" and e.retry == 1500


def test_bom_at_start_is_ignored():
    (e,) = events("\ufeffevent: result\ndata: {}\n\n")
    assert e.event == "result"


def test_unterminated_last_event_is_still_handed_over():
    got = events('event: output\ndata: {"text": "a"}\n\nevent: result\ndata: {"exit_code": 3}')
    assert [e.event for e in got] == ["output", "result"]
    assert got[1].data == '{"exit_code": 3}'


def test_decoder_fed_line_by_line():
    d = SSEDecoder()
    assert d.feed("event: result") is None
    assert d.feed('data: {"a":') is None
    assert d.feed('data: 1}') is None
    e = d.feed("")
    assert e.event == "result" and e.data == '{"a":\n1}'
    assert d.flush() is None


def test_lines_that_keep_their_ending_are_accepted():
    d = SSEDecoder()
    d.feed("event: output\r\n")
    d.feed("data: x\n")
    e = d.feed("\n")
    assert (e.event, e.data) == ("output", "x")

from fastgw._core.nghttp2 cimport nghttp2_session


cdef class _OutStream:
    # a response body being sent on one stream: queued chunks, pulled by nghttp2's data
    # provider as flow control allows
    cdef list chunks            # bytes objects not yet (fully) handed to nghttp2
    cdef Py_ssize_t offset      # bytes of chunks[0] already handed over
    cdef bint ended             # no more data will be queued
    cdef list trailers          # trailer fields to send after the data, or None
    cdef bint deferred          # the provider returned DEFERRED: resume on new data


cdef class H2Connection:
    cdef nghttp2_session *session
    cdef list events            # events of the current receive()
    cdef dict heads             # stream id -> header fields being received (None: too large)
    cdef dict head_sizes        # stream id -> RFC 9113 6.5.2 size of those fields so far
    cdef Py_ssize_t max_header_list
    cdef dict out               # stream id -> _OutStream
    cdef object error           # an exception raised inside a callback, re-raised after
    cdef bint manual_flow       # the caller acknowledges consumed DATA (consume())

    cdef int _submit_response(self, int stream_id, int status, list headers,
                              bint end_stream) except -1

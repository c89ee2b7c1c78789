# Request path normalization and escaping as Kong 3.x does it (kong/tools/uri.lua).
cdef bytes normalize(bytes path)
cdef bytes escape(bytes path)
cdef bint needs_escape(const char* s, Py_ssize_t n) noexcept nogil

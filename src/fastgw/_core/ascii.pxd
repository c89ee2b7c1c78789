# ASCII helpers shared by the plugin kernels (`cimport` them: the inline functions are
# compiled into each user, so there is no cross-module call on the request path).


cdef inline bint ieq_lower(const char* a, const char* lower, Py_ssize_t n) noexcept:
    # ASCII case-insensitive compare of a[0:n] with an already lowercase name
    cdef Py_ssize_t i
    cdef char c
    for i in range(n):
        c = a[i]
        if b'A' <= c <= b'Z':
            c = c + 32
        if c != lower[i]:
            return False
    return True

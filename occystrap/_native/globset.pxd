cdef bint c_match(const unsigned char* prog, Py_ssize_t plen, const unsigned char* s,
                  Py_ssize_t slen) noexcept nogil

cdef long long c_checksum(const unsigned char* b) noexcept nogil
cdef long long c_signed_checksum(const unsigned char* b) noexcept nogil
cdef int c_parse_number(const unsigned char* f, int width, long long* out) noexcept nogil

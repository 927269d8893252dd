# The C side of tarstream_py.py: Cython compiles that file (through the symlink
# tarstream.py) with these declarations, and rewrite.pyx cimports the rules from here.
# Every rule takes a pointer so the C fast path can call it without the GIL; Python
# callers in the same file pass bytes/bytearray, which Cython turns into that pointer.
cimport cython

cdef long long MAX_NUMBER, BAD, MAX_SIZE
cdef int OK, ZERO, CHECKSUM, BAD_SIZE, FIELD_BASE

@cython.locals(first=cython.uchar, value=cython.longlong, i=Py_ssize_t, stop=Py_ssize_t,
               digit=cython.int)
cdef long long field_number(const unsigned char* buf, Py_ssize_t pos, Py_ssize_t width) noexcept nogil

@cython.locals(total=cython.longlong, i=Py_ssize_t)
cdef long long unsigned_checksum(const unsigned char* buf, Py_ssize_t pos) noexcept nogil

@cython.locals(total=cython.longlong, i=Py_ssize_t)
cdef long long signed_checksum(const unsigned char* buf, Py_ssize_t pos) noexcept nogil

@cython.locals(i=Py_ssize_t, stored=cython.longlong, value=cython.longlong)
cdef int header_problem(const unsigned char* buf, Py_ssize_t pos) noexcept nogil

cdef bint is_number(long long value) noexcept nogil
cdef bint size_ok(long long value) noexcept nogil

@cython.locals(n=Py_ssize_t)
cdef Py_ssize_t cstr_len(const unsigned char* buf, Py_ssize_t pos, Py_ssize_t width) noexcept nogil

@cython.locals(kind=cython.uchar, n=Py_ssize_t)
cdef unsigned char header_type(const unsigned char* buf, Py_ssize_t pos) noexcept nogil

cpdef bint has_data(unsigned char kind) noexcept nogil
cpdef long long padded(long long size) noexcept nogil
cpdef bint is_extension(unsigned char kind) noexcept nogil
cpdef bint has_pax_records(unsigned char kind) noexcept nogil
cdef Py_ssize_t strip_slashes(const unsigned char* buf, Py_ssize_t start, Py_ssize_t end) noexcept nogil
cdef Py_ssize_t long_name_end(const unsigned char* buf, Py_ssize_t start, Py_ssize_t end, bint is_dir) noexcept nogil

@cython.locals(length=Py_ssize_t, i=Py_ssize_t, stop=Py_ssize_t)
cdef Py_ssize_t pax_record_end(const unsigned char* buf, Py_ssize_t pos, Py_ssize_t end) noexcept nogil
cdef Py_ssize_t pax_key_start(const unsigned char* buf, Py_ssize_t pos) noexcept nogil
cdef Py_ssize_t pax_equals(const unsigned char* buf, Py_ssize_t start, Py_ssize_t stop) noexcept nogil

@cython.locals(n=Py_ssize_t)
cdef int pax_key(const unsigned char* buf, Py_ssize_t start, Py_ssize_t end) noexcept nogil

@cython.locals(i=Py_ssize_t)
cdef bint _same(const unsigned char* buf, Py_ssize_t start, const char* word, Py_ssize_t n) noexcept nogil

@cython.locals(value=cython.longlong, i=Py_ssize_t, digit=cython.int)
cdef long long pax_decimal(const unsigned char* buf, Py_ssize_t start, Py_ssize_t end) noexcept nogil

@cython.locals(negative=bint, dot=Py_ssize_t, seconds=cython.longlong, fraction=cython.int)
cdef long long pax_time(const unsigned char* buf, Py_ssize_t start, Py_ssize_t end) noexcept nogil

@cython.locals(i=Py_ssize_t, total=cython.longlong)
cdef void set_header_checksum(unsigned char* buf, Py_ssize_t pos) noexcept nogil

@cython.locals(kind=cython.uchar)
cdef Py_ssize_t prefix_len(const unsigned char* buf, Py_ssize_t pos) noexcept nogil

@cython.locals(fraction=cython.int, i=Py_ssize_t)
cdef int pax_fraction(const unsigned char* buf, Py_ssize_t dot, Py_ssize_t end) noexcept nogil

@cython.locals(seconds=cython.longlong, dot=Py_ssize_t)
cdef bint pax_time_after(const unsigned char* buf, Py_ssize_t start, Py_ssize_t end, long long ts) noexcept nogil

cdef bint drops_time_record(const unsigned char* buf, Py_ssize_t key, Py_ssize_t equals, Py_ssize_t stop, long long ts, bint clamp) noexcept nogil

cdef void normalize_header(unsigned char* buf, Py_ssize_t pos, const unsigned char* mtime, long long ts, bint clamp, bint force) noexcept nogil

@cython.locals(key=cython.int)
cdef bint is_time_key(const unsigned char* buf, Py_ssize_t start, Py_ssize_t end) noexcept nogil

@cython.locals(i=Py_ssize_t)
cdef void put_octal(unsigned char* buf, Py_ssize_t pos, Py_ssize_t width, long long value) noexcept nogil

@cython.locals(i=Py_ssize_t)
cdef void patch_mtime(unsigned char* buf, Py_ssize_t pos, const unsigned char* mtime) noexcept nogil

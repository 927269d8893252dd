# The C side of globset_py.py: Cython compiles that file (through the symlink globset.py)
# with these declarations; rewrite.pyx cimports the rules to match names without the GIL.
cimport cython

cdef int T_LIT, T_ANY, T_STAR, T_CLASS

@cython.locals(p=Py_ssize_t, i=Py_ssize_t, star_p=Py_ssize_t, star_i=Py_ssize_t, c=cython.uchar)
cdef bint match_program(const unsigned char* prog, Py_ssize_t plen, const unsigned char* s,
                        Py_ssize_t slen) noexcept nogil

cdef Py_ssize_t name_start(const unsigned char* buf, Py_ssize_t start, Py_ssize_t end) noexcept nogil
cdef Py_ssize_t name_end(const unsigned char* buf, Py_ssize_t start, Py_ssize_t end) noexcept nogil

@cython.locals(base=Py_ssize_t)
cdef bint is_whiteout(const unsigned char* buf, Py_ssize_t start, Py_ssize_t end) noexcept nogil

/*
 * schemas._cavro: Avro binary encode/decode for one record schema, in C.
 *
 * The router decodes four events and encodes two comparisons per request; in
 * generated Python that was ~38 us of its ~105 us per request. This module
 * walks a small tree built once per schema by schemas/fastcodec.py
 * (native_spec) and reads/writes Python dicts directly.
 *
 * Spec node:  (kind, nullable, extra)
 *   kind      one of the K_* values below (same numbers as fastcodec.NATIVE_KINDS)
 *   nullable  0: plain type; 1: union ["null", T]; 2: union [T, "null"]
 *   extra     FIXED: size; ENUM: tuple of symbols; ARRAY/MAP: item node;
 *             RECORD: tuple of (name, has_default, default, node); else None
 *
 * Errors mirror the generated Python codec so callers handle both alike:
 * encode raises TypeError/ValueError/KeyError/OverflowError; decode raises
 * EOFError on truncated input and ValueError/UnicodeDecodeError on invalid input.
 * Output is byte-for-byte Avro (checked against fastavro in the tests).
 *
 * Decoding is strict, exactly like fastcodec.py's generated decoders (the fuzz
 * test in tests/unit/test_codec_fuzz.py checks the two against each other):
 * a varint must be canonical (no redundant high zero groups, at most 10 bytes,
 * no bits beyond 64), an int must fit 32 bits, lengths must not be negative,
 * and the byte size of a negative-count block must match what its items take.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
#include <string.h>

enum {
    K_NULL = 0, K_BOOL = 1, K_INT = 2, K_LONG = 3, K_FLOAT = 4, K_DOUBLE = 5,
    K_STRING = 6, K_BYTES = 7, K_FIXED = 8, K_ENUM = 9, K_ARRAY = 10, K_MAP = 11,
    K_RECORD = 12
};

#define MAX_DEPTH 32
/* Most items of no bytes (null, an empty record) one array or map may hold: the bytes
 * left cannot bound them, and a few bytes could otherwise claim billions. */
#define ZERO_SIZE_ITEMS_LIMIT (1 << 20)

typedef struct Node Node;

typedef struct {
    PyObject *name;  /* str */
    PyObject *dflt;  /* NULL when the field is required */
    Node *node;
} Field;

struct Node {
    int kind;
    int nullable;
    Py_ssize_t size;      /* FIXED: byte size; ENUM: symbols; RECORD: fields */
    Py_ssize_t min_size;  /* fewest bytes a value of this node takes (array guard) */
    PyObject *symbols;    /* ENUM: tuple of str */
    PyObject *index;      /* ENUM: dict str -> int */
    Node *child;          /* ARRAY items / MAP values */
    Field *fields;        /* RECORD */
};

/* -- the node tree ------------------------------------------------------------------ */
static void node_free(Node *n) {
    if (n == NULL) return;
    Py_XDECREF(n->symbols);
    Py_XDECREF(n->index);
    node_free(n->child);
    if (n->fields != NULL) {
        for (Py_ssize_t i = 0; i < n->size; i++) {
            Py_XDECREF(n->fields[i].name);
            Py_XDECREF(n->fields[i].dflt);
            node_free(n->fields[i].node);
        }
        PyMem_Free(n->fields);
    }
    PyMem_Free(n);
}

static Node *node_build(PyObject *spec, int depth) {
    if (depth > MAX_DEPTH) {
        PyErr_SetString(PyExc_ValueError, "schema nested too deeply");
        return NULL;
    }
    if (!PyTuple_Check(spec) || PyTuple_GET_SIZE(spec) != 3) {
        PyErr_SetString(PyExc_TypeError, "spec node must be a (kind, nullable, extra) tuple");
        return NULL;
    }
    long kind = PyLong_AsLong(PyTuple_GET_ITEM(spec, 0));
    long nullable = PyLong_AsLong(PyTuple_GET_ITEM(spec, 1));
    if (PyErr_Occurred()) return NULL;
    if (kind < K_NULL || kind > K_RECORD || nullable < 0 || nullable > 2) {
        PyErr_SetString(PyExc_ValueError, "bad spec node");
        return NULL;
    }
    PyObject *extra = PyTuple_GET_ITEM(spec, 2);
    Node *n = PyMem_Calloc(1, sizeof(Node));
    if (n == NULL) return (Node *)PyErr_NoMemory();
    n->kind = (int)kind;
    n->nullable = (int)nullable;
    Py_ssize_t base = 1;
    switch (n->kind) {
    case K_NULL:
        base = 0;
        break;
    case K_FLOAT:
        base = 4;
        break;
    case K_DOUBLE:
        base = 8;
        break;
    case K_FIXED:
        n->size = PyLong_AsSsize_t(extra);
        if (n->size < 0) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "fixed size < 0");
            goto fail;
        }
        base = n->size;
        break;
    case K_ENUM: {
        if (!PyTuple_Check(extra)) {
            PyErr_SetString(PyExc_TypeError, "enum symbols must be a tuple");
            goto fail;
        }
        Py_INCREF(extra);
        n->symbols = extra;
        n->size = PyTuple_GET_SIZE(extra);
        n->index = PyDict_New();
        if (n->index == NULL) goto fail;
        for (Py_ssize_t i = 0; i < n->size; i++) {
            PyObject *i_obj = PyLong_FromSsize_t(i);
            if (i_obj == NULL) goto fail;
            int rc = PyDict_SetItem(n->index, PyTuple_GET_ITEM(extra, i), i_obj);
            Py_DECREF(i_obj);
            if (rc < 0) goto fail;
        }
        break;
    }
    case K_ARRAY:
    case K_MAP:
        n->child = node_build(extra, depth + 1);
        if (n->child == NULL) goto fail;
        break;
    case K_RECORD: {
        if (!PyTuple_Check(extra)) {
            PyErr_SetString(PyExc_TypeError, "record fields must be a tuple");
            goto fail;
        }
        Py_ssize_t count = PyTuple_GET_SIZE(extra);
        n->fields = PyMem_Calloc(count ? count : 1, sizeof(Field));
        if (n->fields == NULL) {
            PyErr_NoMemory();
            goto fail;
        }
        n->size = count;
        base = 0;
        for (Py_ssize_t i = 0; i < count; i++) {
            PyObject *f = PyTuple_GET_ITEM(extra, i);
            if (!PyTuple_Check(f) || PyTuple_GET_SIZE(f) != 4 ||
                !PyUnicode_Check(PyTuple_GET_ITEM(f, 0))) {
                PyErr_SetString(PyExc_TypeError,
                                "record field must be (name, has_default, default, node)");
                goto fail;
            }
            PyObject *name = PyTuple_GET_ITEM(f, 0);
            Py_INCREF(name);
            PyUnicode_InternInPlace(&name);
            n->fields[i].name = name;
            int has_default = PyObject_IsTrue(PyTuple_GET_ITEM(f, 1));
            if (has_default < 0) goto fail;
            if (has_default) {
                n->fields[i].dflt = PyTuple_GET_ITEM(f, 2);
                Py_INCREF(n->fields[i].dflt);
            }
            n->fields[i].node = node_build(PyTuple_GET_ITEM(f, 3), depth + 1);
            if (n->fields[i].node == NULL) goto fail;
            base += n->fields[i].node->min_size;
        }
        break;
    }
    default:
        break;
    }
    n->min_size = n->nullable ? 1 : base;
    return n;
fail:
    node_free(n);
    return NULL;
}

/* -- encoding ------------------------------------------------------------------------ */
typedef struct {
    char *p;
    Py_ssize_t len;
    Py_ssize_t cap;
    char *heap;
    char stack[1024];
} Buf;

static int buf_reserve(Buf *b, Py_ssize_t extra) {
    if (b->len + extra <= b->cap) return 0;
    Py_ssize_t cap = b->cap * 2;
    while (cap < b->len + extra) cap *= 2;
    char *mem;
    if (b->heap == NULL) {
        mem = PyMem_Malloc(cap);
        if (mem != NULL) memcpy(mem, b->p, b->len);
    } else {
        mem = PyMem_Realloc(b->heap, cap);
    }
    if (mem == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->heap = mem;
    b->p = mem;
    b->cap = cap;
    return 0;
}

static inline int put_byte(Buf *b, char c) {
    if (b->len >= b->cap && buf_reserve(b, 1) < 0) return -1;
    b->p[b->len++] = c;
    return 0;
}

static inline int put_raw(Buf *b, const char *src, Py_ssize_t n) {
    if (buf_reserve(b, n) < 0) return -1;
    memcpy(b->p + b->len, src, (size_t)n);
    b->len += n;
    return 0;
}

static inline int put_long(Buf *b, long long v) {
    if (buf_reserve(b, 10) < 0) return -1;
    unsigned long long z = ((unsigned long long)v << 1) ^ (unsigned long long)(v >> 63);
    unsigned char *out = (unsigned char *)b->p + b->len;
    Py_ssize_t i = 0;
    while (z & ~0x7FULL) {
        out[i++] = (unsigned char)((z & 0x7F) | 0x80);
        z >>= 7;
    }
    out[i++] = (unsigned char)z;
    b->len += i;
    return 0;
}

static int as_long_long(PyObject *v, long long *out) {
    int overflow = 0;
    if (PyLong_Check(v)) {
        *out = PyLong_AsLongLongAndOverflow(v, &overflow);
    } else {
        PyObject *idx = PyNumber_Index(v);
        if (idx == NULL) return -1;
        *out = PyLong_AsLongLongAndOverflow(idx, &overflow);
        Py_DECREF(idx);
    }
    if (overflow) {
        PyErr_SetString(PyExc_OverflowError, "integer does not fit an Avro long");
        return -1;
    }
    if (*out == -1 && PyErr_Occurred()) return -1;
    return 0;
}

static int encode_node(Buf *b, Node *n, PyObject *v);

static int encode_string_bytes(Buf *b, const char *s, Py_ssize_t size) {
    if (put_long(b, size) < 0) return -1;
    return put_raw(b, s, size);
}

static int encode_record(Buf *b, Node *n, PyObject *v) {
    if (!PyDict_Check(v)) {
        PyErr_Format(PyExc_TypeError, "expected a dict for a record, got %.100s",
                     Py_TYPE(v)->tp_name);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n->size; i++) {
        Field *f = &n->fields[i];
        PyObject *x = PyDict_GetItemWithError(v, f->name);
        if (x == NULL) {
            if (PyErr_Occurred()) return -1;
            if (f->dflt == NULL) {
                PyErr_SetObject(PyExc_KeyError, f->name);
                return -1;
            }
            x = f->dflt;
        }
        Py_INCREF(x);
        int rc = encode_node(b, f->node, x);
        Py_DECREF(x);
        if (rc < 0) return -1;
    }
    return 0;
}

static int encode_node(Buf *b, Node *n, PyObject *v) {
    if (n->nullable) {
        if (v == Py_None) return put_byte(b, n->nullable == 1 ? 0 : 2);
        if (put_byte(b, n->nullable == 1 ? 2 : 0) < 0) return -1;
    }
    switch (n->kind) {
    case K_NULL:
        if (v != Py_None) {
            PyErr_SetString(PyExc_TypeError, "expected null");
            return -1;
        }
        return 0;
    case K_BOOL: {
        int t = PyObject_IsTrue(v);
        if (t < 0) return -1;
        return put_byte(b, t ? 1 : 0);
    }
    case K_INT:
    case K_LONG: {
        long long x;
        if (as_long_long(v, &x) < 0) return -1;
        if (n->kind == K_INT && (x < -2147483648LL || x > 2147483647LL)) {
            PyErr_SetString(PyExc_OverflowError, "integer does not fit an Avro int");
            return -1;
        }
        return put_long(b, x);
    }
    case K_FLOAT:
    case K_DOUBLE: {
        double d = PyFloat_AsDouble(v);
        if (d == -1.0 && PyErr_Occurred()) return -1;
        Py_ssize_t width = n->kind == K_FLOAT ? 4 : 8;
        if (buf_reserve(b, width) < 0) return -1;
        unsigned char *out = (unsigned char *)b->p + b->len;
        if ((n->kind == K_FLOAT ? PyFloat_Pack4(d, (char *)out, 1)
                                : PyFloat_Pack8(d, (char *)out, 1)) < 0)
            return -1;
        b->len += width;
        return 0;
    }
    case K_STRING: {
        if (!PyUnicode_Check(v)) {
            PyErr_Format(PyExc_TypeError, "expected str, got %.100s", Py_TYPE(v)->tp_name);
            return -1;
        }
        Py_ssize_t size;
        const char *s = PyUnicode_AsUTF8AndSize(v, &size);
        if (s == NULL) return -1;
        return encode_string_bytes(b, s, size);
    }
    case K_BYTES:
        if (PyBytes_Check(v)) return encode_string_bytes(b, PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v));
        if (PyByteArray_Check(v))
            return encode_string_bytes(b, PyByteArray_AS_STRING(v), PyByteArray_GET_SIZE(v));
        PyErr_Format(PyExc_TypeError, "expected bytes, got %.100s", Py_TYPE(v)->tp_name);
        return -1;
    case K_FIXED: {
        const char *s;
        Py_ssize_t size;
        if (PyBytes_Check(v)) {
            s = PyBytes_AS_STRING(v);
            size = PyBytes_GET_SIZE(v);
        } else if (PyByteArray_Check(v)) {
            s = PyByteArray_AS_STRING(v);
            size = PyByteArray_GET_SIZE(v);
        } else {
            PyErr_Format(PyExc_TypeError, "expected bytes, got %.100s", Py_TYPE(v)->tp_name);
            return -1;
        }
        if (size != n->size) {
            PyErr_Format(PyExc_ValueError, "fixed of %zd bytes, got %zd", n->size, size);
            return -1;
        }
        return put_raw(b, s, size);
    }
    case K_ENUM: {
        PyObject *i = PyDict_GetItemWithError(n->index, v);
        if (i == NULL) {
            if (!PyErr_Occurred()) PyErr_SetObject(PyExc_KeyError, v);
            return -1;
        }
        return put_long(b, PyLong_AsLongLong(i));
    }
    case K_ARRAY: {
        if (PyUnicode_Check(v) || PyBytes_Check(v) || PyDict_Check(v) || v == Py_None) {
            PyErr_Format(PyExc_TypeError, "expected a list for an array, got %.100s",
                         Py_TYPE(v)->tp_name);
            return -1;
        }
        PyObject *seq = PySequence_Fast(v, "expected a list for an array");
        if (seq == NULL) return -1;
        Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
        int rc = 0;
        if (count > 0) {
            rc = put_long(b, count);
            PyObject **items = PySequence_Fast_ITEMS(seq);
            for (Py_ssize_t i = 0; rc == 0 && i < count; i++) rc = encode_node(b, n->child, items[i]);
        }
        Py_DECREF(seq);
        if (rc < 0) return -1;
        return put_byte(b, 0);
    }
    case K_MAP: {
        if (!PyDict_Check(v)) {
            PyErr_Format(PyExc_TypeError, "expected a dict for a map, got %.100s",
                         Py_TYPE(v)->tp_name);
            return -1;
        }
        Py_ssize_t count = PyDict_GET_SIZE(v);
        if (count > 0) {
            if (put_long(b, count) < 0) return -1;
            Py_ssize_t it = 0, seen = 0;
            PyObject *key, *val;
            while (PyDict_Next(v, &it, &key, &val)) {
                if (!PyUnicode_Check(key)) {
                    PyErr_Format(PyExc_TypeError, "map keys must be str, got %.100s",
                                 Py_TYPE(key)->tp_name);
                    return -1;
                }
                Py_ssize_t size;
                const char *s = PyUnicode_AsUTF8AndSize(key, &size);
                if (s == NULL || encode_string_bytes(b, s, size) < 0) return -1;
                Py_INCREF(val);
                int rc = encode_node(b, n->child, val);
                Py_DECREF(val);
                if (rc < 0) return -1;
                seen++;
            }
            if (seen != count) {
                PyErr_SetString(PyExc_RuntimeError, "dict changed size during encoding");
                return -1;
            }
        }
        return put_byte(b, 0);
    }
    case K_RECORD:
        return encode_record(b, n, v);
    }
    PyErr_SetString(PyExc_SystemError, "unknown node kind");
    return -1;
}

/* -- decoding ------------------------------------------------------------------------ */
typedef struct {
    const unsigned char *p;
    Py_ssize_t pos;
    Py_ssize_t len;
} Reader;

static int truncated(void) {
    PyErr_SetString(PyExc_EOFError, "truncated Avro body");
    return -1;
}

static int invalid(const char *why) {
    PyErr_SetString(PyExc_ValueError, why);
    return -1;
}

/* A zig-zag varint, canonical only: the shortest encoding of a 64-bit value. */
static inline int read_long(Reader *r, long long *out) {
    unsigned long long n = 0;
    int shift = 0;
    unsigned char c;
    for (;;) {
        if (r->pos >= r->len) return truncated();
        c = r->p[r->pos++];
        n |= (unsigned long long)(c & 0x7F) << shift;
        if (c < 0x80) break;
        shift += 7;
        if (shift > 63) return invalid("varint longer than 10 bytes");
    }
    if (shift == 63 && c > 1) return invalid("varint exceeds 64 bits");
    if (c == 0 && shift > 0) return invalid("non-canonical varint (overlong encoding)");
    *out = (long long)((n >> 1) ^ (~(n & 1) + 1));
    return 0;
}

static inline int read_int(Reader *r, long long *out) {
    if (read_long(r, out) < 0) return -1;
    if (*out < -2147483648LL || *out > 2147483647LL) return invalid("int out of 32-bit range");
    return 0;
}

static PyObject *decode_node(Reader *r, Node *n);

static int read_span(Reader *r, Py_ssize_t *start, Py_ssize_t *size) {
    long long n;
    if (read_long(r, &n) < 0) return -1;
    if (n < 0) return invalid("negative length");
    if (n > r->len - r->pos) return truncated();
    *start = r->pos;
    *size = (Py_ssize_t)n;
    r->pos += (Py_ssize_t)n;
    return 0;
}

static PyObject *decode_record(Reader *r, Node *n) {
    PyObject *d = PyDict_New();
    if (d == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n->size; i++) {
        PyObject *x = decode_node(r, n->fields[i].node);
        if (x == NULL || PyDict_SetItem(d, n->fields[i].name, x) < 0) {
            Py_XDECREF(x);
            Py_DECREF(d);
            return NULL;
        }
        Py_DECREF(x);
    }
    return d;
}

/* Block count of an array/map; 0 ends it. A negative count carries the block's
 * byte size: *end is where the block must end (-1 when no size was given). */
static int read_block_count(Reader *r, Node *item, Py_ssize_t *count, Py_ssize_t *end) {
    long long c;
    *end = -1;
    if (read_long(r, &c) < 0) return -1;
    if (c < 0) {
        long long block_bytes;
        if (c == LLONG_MIN) return invalid("implausible block count");
        c = -c;
        if (read_long(r, &block_bytes) < 0) return -1;
        if (block_bytes < 0) return invalid("negative block size");
        if (block_bytes > r->len - r->pos) return truncated();
        *end = r->pos + (Py_ssize_t)block_bytes;
    }
    Py_ssize_t min_size = item->min_size;
    if (min_size > 0) {
        if (c > (r->len - r->pos) / min_size) return truncated();
    } else if (c > ZERO_SIZE_ITEMS_LIMIT) {
        return invalid("implausible block count");
    }
    *count = (Py_ssize_t)c;
    return 0;
}

static inline int check_block_end(Reader *r, Py_ssize_t end) {
    if (end >= 0 && r->pos != end) return invalid("block size does not match its items");
    return 0;
}

/* Items of no bytes are bounded over the whole array/map, not per block. */
static inline int count_zero_size(Node *item, Py_ssize_t count, Py_ssize_t *total) {
    if (item->min_size > 0) return 0;
    *total += count;
    return *total > ZERO_SIZE_ITEMS_LIMIT ? invalid("implausible block count") : 0;
}

static PyObject *decode_node(Reader *r, Node *n) {
    if (n->nullable) {
        if (r->pos >= r->len) return truncated(), NULL;
        unsigned char branch = r->p[r->pos++];
        unsigned char null_branch = n->nullable == 1 ? 0 : 2;
        if (branch == null_branch) Py_RETURN_NONE;
        if (branch != (2 - null_branch)) {
            PyErr_SetString(PyExc_ValueError, "bad union branch");
            return NULL;
        }
    }
    switch (n->kind) {
    case K_NULL:
        Py_RETURN_NONE;
    case K_BOOL: {
        if (r->pos >= r->len) return truncated(), NULL;
        unsigned char c = r->p[r->pos++];
        if (c > 1) {
            PyErr_SetString(PyExc_ValueError, "bad boolean");
            return NULL;
        }
        return PyBool_FromLong(c);
    }
    case K_INT:
    case K_LONG: {
        long long x;
        if ((n->kind == K_INT ? read_int(r, &x) : read_long(r, &x)) < 0) return NULL;
        return PyLong_FromLongLong(x);
    }
    case K_FLOAT:
    case K_DOUBLE: {
        Py_ssize_t width = n->kind == K_FLOAT ? 4 : 8;
        if (r->len - r->pos < width) return truncated(), NULL;
        const char *at = (const char *)r->p + r->pos;
        double d = n->kind == K_FLOAT ? PyFloat_Unpack4(at, 1) : PyFloat_Unpack8(at, 1);
        if (d == -1.0 && PyErr_Occurred()) return NULL;
        r->pos += width;
        return PyFloat_FromDouble(d);
    }
    case K_STRING: {
        Py_ssize_t start, size;
        if (read_span(r, &start, &size) < 0) return NULL;
        return PyUnicode_DecodeUTF8((const char *)r->p + start, size, NULL);
    }
    case K_BYTES: {
        Py_ssize_t start, size;
        if (read_span(r, &start, &size) < 0) return NULL;
        return PyBytes_FromStringAndSize((const char *)r->p + start, size);
    }
    case K_FIXED: {
        if (r->len - r->pos < n->size) return truncated(), NULL;
        PyObject *out = PyBytes_FromStringAndSize((const char *)r->p + r->pos, n->size);
        r->pos += n->size;
        return out;
    }
    case K_ENUM: {
        long long i;
        if (read_long(r, &i) < 0) return NULL;
        if (i < 0 || i >= n->size) return invalid("enum index out of range"), NULL;
        PyObject *symbol = PyTuple_GET_ITEM(n->symbols, (Py_ssize_t)i);
        Py_INCREF(symbol);
        return symbol;
    }
    case K_ARRAY: {
        PyObject *list = PyList_New(0);
        if (list == NULL) return NULL;
        Py_ssize_t total = 0;
        for (;;) {
            Py_ssize_t count, end;
            if (read_block_count(r, n->child, &count, &end) < 0) goto array_fail;
            if (count == 0) break;
            if (count_zero_size(n->child, count, &total) < 0) goto array_fail;
            for (Py_ssize_t i = 0; i < count; i++) {
                PyObject *x = decode_node(r, n->child);
                if (x == NULL) goto array_fail;
                int rc = PyList_Append(list, x);
                Py_DECREF(x);
                if (rc < 0) goto array_fail;
            }
            if (check_block_end(r, end) < 0) goto array_fail;
        }
        return list;
    array_fail:
        Py_DECREF(list);
        return NULL;
    }
    case K_MAP: {
        PyObject *map = PyDict_New();
        if (map == NULL) return NULL;
        Py_ssize_t total = 0;
        for (;;) {
            Py_ssize_t count, end;
            if (read_block_count(r, n->child, &count, &end) < 0) goto map_fail;
            if (count == 0) break;
            if (count_zero_size(n->child, count, &total) < 0) goto map_fail;
            for (Py_ssize_t i = 0; i < count; i++) {
                Py_ssize_t start, size;
                if (read_span(r, &start, &size) < 0) goto map_fail;
                PyObject *key = PyUnicode_DecodeUTF8((const char *)r->p + start, size, NULL);
                if (key == NULL) goto map_fail;
                PyObject *x = decode_node(r, n->child);
                if (x == NULL) {
                    Py_DECREF(key);
                    goto map_fail;
                }
                int rc = PyDict_SetItem(map, key, x);
                Py_DECREF(key);
                Py_DECREF(x);
                if (rc < 0) goto map_fail;
            }
            if (check_block_end(r, end) < 0) goto map_fail;
        }
        return map;
    map_fail:
        Py_DECREF(map);
        return NULL;
    }
    case K_RECORD:
        return decode_record(r, n);
    }
    PyErr_SetString(PyExc_SystemError, "unknown node kind");
    return NULL;
}

/* -- checking without decoding ------------------------------------------------------- */
/* Well-formed UTF-8 exactly as Python's strict decoder defines it (Unicode table 3-7:
 * no overlong forms, no surrogates, nothing past U+10FFFF). */
static int utf8_valid(const unsigned char *s, Py_ssize_t n) {
    Py_ssize_t i = 0;
    while (i < n) {
        while (i + 8 <= n) {  /* ASCII runs, eight bytes at a time */
            unsigned long long w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ULL) break;
            i += 8;
        }
        if (i >= n) break;
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        int len;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) len = 2;
        else if (c == 0xE0) { len = 3; lo = 0xA0; }
        else if (c >= 0xE1 && c <= 0xEC) len = 3;
        else if (c == 0xED) { len = 3; hi = 0x9F; }
        else if (c >= 0xEE && c <= 0xEF) len = 3;
        else if (c == 0xF0) { len = 4; lo = 0x90; }
        else if (c >= 0xF1 && c <= 0xF3) len = 4;
        else if (c == 0xF4) { len = 4; hi = 0x8F; }
        else return 0;
        if (n - i < len || s[i + 1] < lo || s[i + 1] > hi) return 0;
        for (int k = 2; k < len; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF) return 0;
        i += len;
    }
    return 1;
}

static int check_text(Reader *r) {
    Py_ssize_t start, size;
    if (read_span(r, &start, &size) < 0) return -1;
    if (!utf8_valid(r->p + start, size)) return invalid("invalid UTF-8 in a string");
    return 0;
}

/* What decode_node accepts and refuses, with the same errors, building nothing. */
static int check_node(Reader *r, Node *n) {
    if (n->nullable) {
        if (r->pos >= r->len) return truncated();
        unsigned char branch = r->p[r->pos++];
        unsigned char null_branch = n->nullable == 1 ? 0 : 2;
        if (branch == null_branch) return 0;
        if (branch != (2 - null_branch)) return invalid("bad union branch");
    }
    long long x;
    Py_ssize_t start, size;
    switch (n->kind) {
    case K_NULL:
        return 0;
    case K_BOOL:
        if (r->pos >= r->len) return truncated();
        return r->p[r->pos++] > 1 ? invalid("bad boolean") : 0;
    case K_INT:
        return read_int(r, &x);
    case K_LONG:
        return read_long(r, &x);
    case K_FLOAT:
    case K_DOUBLE: {
        Py_ssize_t width = n->kind == K_FLOAT ? 4 : 8;
        if (r->len - r->pos < width) return truncated();
        r->pos += width;
        return 0;
    }
    case K_STRING:
        return check_text(r);
    case K_BYTES:
        return read_span(r, &start, &size);
    case K_FIXED:
        if (r->len - r->pos < n->size) return truncated();
        r->pos += n->size;
        return 0;
    case K_ENUM:
        if (read_long(r, &x) < 0) return -1;
        return (x < 0 || x >= n->size) ? invalid("enum index out of range") : 0;
    case K_ARRAY:
    case K_MAP: {
        Py_ssize_t total = 0;
        for (;;) {
            Py_ssize_t count, end;
            if (read_block_count(r, n->child, &count, &end) < 0) return -1;
            if (count == 0) return 0;
            if (count_zero_size(n->child, count, &total) < 0) return -1;
            for (Py_ssize_t i = 0; i < count; i++) {
                if (n->kind == K_MAP && check_text(r) < 0) return -1;
                if (check_node(r, n->child) < 0) return -1;
            }
            if (check_block_end(r, end) < 0) return -1;
        }
    }
    case K_RECORD:
        for (Py_ssize_t i = 0; i < n->size; i++)
            if (check_node(r, n->fields[i].node) < 0) return -1;
        return 0;
    }
    PyErr_SetString(PyExc_SystemError, "unknown node kind");
    return -1;
}

/* -- the Codec type ---------------------------------------------------------------- */
typedef struct {
    PyObject_HEAD
    Node *root;
} CodecObject;

static void codec_dealloc(CodecObject *self) {
    node_free(self->root);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

PyDoc_STRVAR(encode_doc,
"encode(record, prefix=b'') -> bytes\n\n"
"prefix followed by the Avro binary body of record.");

static PyObject *codec_encode(CodecObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "encode(record, prefix=b'')");
        return NULL;
    }
    Buf b;
    b.p = b.stack;
    b.len = 0;
    b.cap = (Py_ssize_t)sizeof(b.stack);
    b.heap = NULL;
    if (nargs == 2) {
        PyObject *prefix = args[1];
        if (!PyBytes_Check(prefix)) {
            PyErr_SetString(PyExc_TypeError, "prefix must be bytes");
            return NULL;
        }
        if (put_raw(&b, PyBytes_AS_STRING(prefix), PyBytes_GET_SIZE(prefix)) < 0) goto fail;
    }
    if (encode_node(&b, self->root, args[0]) < 0) goto fail;
    PyObject *out = PyBytes_FromStringAndSize(b.p, b.len);
    PyMem_Free(b.heap);
    return out;
fail:
    PyMem_Free(b.heap);
    return NULL;
}

/* decode(data, pos) and check(data, pos): the buffer (released by the caller once
   r is no longer read) and a reader at pos; -1 with the exception set. */
static int open_reader(PyObject *const *args, Py_ssize_t nargs, const char *usage,
                       Py_buffer *view, Reader *r) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, usage);
        return -1;
    }
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    if (pos == -1 && PyErr_Occurred()) return -1;
    if (PyObject_GetBuffer(args[0], view, PyBUF_SIMPLE) < 0) return -1;
    if (pos < 0 || pos > view->len) {
        PyBuffer_Release(view);
        PyErr_SetString(PyExc_EOFError, "position outside the data");
        return -1;
    }
    r->p = (const unsigned char *)view->buf;
    r->pos = pos;
    r->len = view->len;
    return 0;
}

PyDoc_STRVAR(decode_doc,
"decode(data, pos) -> (record, end)\n\n"
"Decode one value starting at data[pos]; end is the offset after it.");

static PyObject *codec_decode(CodecObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Py_buffer view;
    Reader r;
    if (open_reader(args, nargs, "decode(data, pos)", &view, &r) < 0) return NULL;
    PyObject *value = decode_node(&r, self->root);
    PyBuffer_Release(&view);
    if (value == NULL) return NULL;
    PyObject *end = PyLong_FromSsize_t(r.pos);
    if (end == NULL) {
        Py_DECREF(value);
        return NULL;
    }
    PyObject *out = PyTuple_Pack(2, value, end);
    Py_DECREF(value);
    Py_DECREF(end);
    return out;
}

PyDoc_STRVAR(check_doc,
"check(data, pos) -> end\n\n"
"What decode(data, pos) would accept or refuse, with the same errors, without\n"
"building the value: end is the offset after it.");

static PyObject *codec_check(CodecObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Py_buffer view;
    Reader r;
    if (open_reader(args, nargs, "check(data, pos)", &view, &r) < 0) return NULL;
    int rc = check_node(&r, self->root);
    PyBuffer_Release(&view);
    if (rc < 0) return NULL;
    return PyLong_FromSsize_t(r.pos);
}

static PyMethodDef codec_methods[] = {
    {"encode", (PyCFunction)(void (*)(void))codec_encode, METH_FASTCALL, encode_doc},
    {"decode", (PyCFunction)(void (*)(void))codec_decode, METH_FASTCALL, decode_doc},
    {"check", (PyCFunction)(void (*)(void))codec_check, METH_FASTCALL, check_doc},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject CodecType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "schemas._cavro.Codec",
    .tp_basicsize = sizeof(CodecObject),
    .tp_dealloc = (destructor)codec_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Avro binary encoder/decoder for one schema (build with compile()).",
    .tp_methods = codec_methods,
};

static PyObject *cavro_compile(PyObject *module, PyObject *spec) {
    Node *root = node_build(spec, 0);
    if (root == NULL) return NULL;
    CodecObject *self = PyObject_New(CodecObject, &CodecType);
    if (self == NULL) {
        node_free(root);
        return NULL;
    }
    self->root = root;
    return (PyObject *)self;
}

static PyMethodDef module_methods[] = {
    {"compile", (PyCFunction)cavro_compile, METH_O,
     "compile(spec) -> Codec, spec as built by schemas.fastcodec.native_spec"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef cavro_module = {
    PyModuleDef_HEAD_INIT, "schemas._cavro",
    "Avro binary encode/decode in C for the schemas this project owns.", -1, module_methods,
};

PyMODINIT_FUNC PyInit__cavro(void) {
    if (PyType_Ready(&CodecType) < 0) return NULL;
    PyObject *m = PyModule_Create(&cavro_module);
    if (m == NULL) return NULL;
    Py_INCREF(&CodecType);
    if (PyModule_AddObject(m, "Codec", (PyObject *)&CodecType) < 0) {
        Py_DECREF(&CodecType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

/* tensor.c — the opaque tensor: owned, borrowed or external storage (refcounted, shared by views; an
 * external storage runs its owner's deleter at release), shape,
 * strides and offset in elements, contract validation, host copies (gather/scatter for views), the cache
 * prefetch hint (lc_tensor_prefetch).
 * Tests: tests/c/test_core.c, tests/python/test_tensor.py, tests/python/test_prefetch.py. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend.h"
#include "core/internal.h"
#include "lightning_core/runtime.h"
#include "lightning_core/tensor.h"

typedef struct lc_storage {
    atomic_int refs;
    void *data;          /* host or device address */
    int64_t elems;
    lc_device device;
    int owned;           /* freed with the storage (else borrowed from the caller) */
    int writable;
    void (*deleter)(void *ctx); /* external storage (lc_tensor_wrap_external): runs at release */
    void *deleter_ctx;
} lc_storage;

struct lc_tensor {
    lc_storage *storage;
    lc_dtype dtype;
    int ndim;
    int64_t shape[LC_MAX_DIMS];
    int64_t strides[LC_MAX_DIMS];
    int64_t offset;
    int64_t numel;
    int is_view;
};

lc_status lc_shape_validate(const char *what, int ndim, const int64_t *shape) {
    if (!what) what = "shape";
    if (ndim < 1 || ndim > LC_MAX_DIMS)
        return lc_error(LC_ERR_SHAPE, "%s: expected 1..%d dimensions, got %d", what, LC_MAX_DIMS, ndim);
    if (!shape) return lc_error(LC_ERR_INVALID_ARGUMENT, "%s: expected a shape array, got NULL", what);
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] <= 0)
            return lc_error(LC_ERR_SHAPE, "%s: expected every dimension > 0, got %lld at dim %d", what,
                            (long long)shape[i], i);
        if (!lc_mul_ok(numel, shape[i], &numel) || numel > INT64_MAX / 8)
            return lc_error(LC_ERR_SHAPE, "%s: element count overflows at dim %d", what, i);
    }
    return LC_OK;
}

lc_status lc_view_validate(int64_t storage_elems, int ndim, const int64_t *shape, const int64_t *strides,
                           int64_t offset) {
    lc_status st = lc_shape_validate("view shape", ndim, shape);
    if (st != LC_OK) return st;
    if (offset < 0) return lc_error(LC_ERR_INVALID_ARGUMENT, "view offset: expected >= 0, got %lld", (long long)offset);
    int64_t last = offset;
    for (int i = 0; i < ndim; i++) {
        int64_t stride = strides ? strides[i] : 0;
        if (stride < 0)
            return lc_error(LC_ERR_INVALID_ARGUMENT, "view strides: expected >= 0, got %lld at dim %d",
                            (long long)stride, i);
        int64_t span;
        if (!lc_mul_ok(shape[i] - 1, stride, &span) || last > INT64_MAX - span)
            return lc_error(LC_ERR_INVALID_ARGUMENT, "view strides: extent overflows at dim %d", i);
        last += span;
    }
    if (last >= storage_elems)
        return lc_error(LC_ERR_INVALID_ARGUMENT,
                        "view: expected every element inside the storage of %lld elements, but the view "
                        "reaches element %lld (offset %lld)",
                        (long long)storage_elems, (long long)last, (long long)offset);
    return LC_OK;
}

static void lc_contiguous_strides(int ndim, const int64_t *shape, int64_t *strides) {
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        strides[i] = s;
        s *= shape[i];
    }
}

static lc_status lc_check_dtype(lc_dtype dtype) {
    if (lc_dtype_size(dtype) == 0)
        return lc_error(LC_ERR_DTYPE, "dtype: expected float32 or float64, got code %d", (int)dtype);
    return LC_OK;
}

static lc_status lc_check_storage_device(lc_device device) {
    if (device != LC_DEVICE_CPU && device != LC_DEVICE_CUDA)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "device: expected cpu or cuda for tensor storage, got %s",
                        lc_device_name(device));
    if (!lc_backend_for(device) || !lc_device_available(device))
        return lc_error(LC_ERR_DEVICE_UNAVAILABLE, "device: %s is not available in this build/machine",
                        lc_device_name(device));
    return LC_OK;
}

static void lc_storage_release(lc_storage *s) {
    if (!s) return;
    if (atomic_fetch_sub(&s->refs, 1) != 1) return;
    if (s->owned && s->data) lc_backend_for(s->device)->free(s->data);
    if (s->deleter) s->deleter(s->deleter_ctx);
    free(s);
}

/* A tensor header over `storage` (takes one reference on success). */
static lc_status lc_tensor_make(lc_storage *storage, lc_dtype dtype, int ndim, const int64_t *shape,
                                const int64_t *strides, int64_t offset, int is_view, lc_tensor_t **out) {
    lc_tensor_t *t = malloc(sizeof *t); /* malloc + memset: served from glibc's per-thread cache */
    if (!t) return lc_error(LC_ERR_OUT_OF_MEMORY, "tensor: could not allocate the tensor header");
    memset(t, 0, sizeof *t);
    t->storage = storage;
    t->dtype = dtype;
    t->ndim = ndim;
    t->offset = offset;
    t->is_view = is_view;
    t->numel = 1;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        t->numel *= shape[i];
    }
    if (strides)
        memcpy(t->strides, strides, (size_t)ndim * sizeof(int64_t));
    else
        lc_contiguous_strides(ndim, shape, t->strides);
    atomic_fetch_add(&storage->refs, 1);
    *out = t;
    return LC_OK;
}

static lc_status lc_storage_new(lc_device device, int64_t elems, size_t elem_size, lc_storage **out) {
    lc_storage *s = calloc(1, sizeof *s);
    if (!s) return lc_error(LC_ERR_OUT_OF_MEMORY, "tensor: could not allocate the storage header");
    size_t bytes = (size_t)elems * elem_size;
    lc_status st = lc_backend_for(device)->alloc(bytes, &s->data);
    if (st != LC_OK) {
        free(s);
        return st;
    }
    s->elems = elems;
    s->device = device;
    s->owned = 1;
    s->writable = 1;
    atomic_init(&s->refs, 0);
    *out = s;
    return LC_OK;
}

lc_status lc_tensor_new(lc_dtype dtype, lc_device device, int ndim, const int64_t *shape, lc_tensor_t **out) {
    if (!out) return lc_error(LC_ERR_INVALID_ARGUMENT, "tensor_new: out: expected a pointer, got NULL");
    *out = NULL;
    lc_status st;
    if ((st = lc_check_dtype(dtype)) != LC_OK || (st = lc_shape_validate("shape", ndim, shape)) != LC_OK ||
        (st = lc_check_storage_device(device)) != LC_OK)
        return st;
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) numel *= shape[i];
    lc_storage *s = NULL;
    if ((st = lc_storage_new(device, numel, lc_dtype_size(dtype), &s)) != LC_OK) return st;
    st = lc_tensor_make(s, dtype, ndim, shape, NULL, 0, 0, out);
    if (st != LC_OK) {
        lc_backend_for(device)->free(s->data);
        free(s);
    }
    return st;
}

lc_status lc_tensor_from_host(const void *data, size_t nbytes, lc_dtype dtype, lc_device device, int ndim,
                              const int64_t *shape, lc_tensor_t **out) {
    if (!data) return lc_error(LC_ERR_INVALID_ARGUMENT, "tensor_from_host: data: expected a pointer, got NULL");
    lc_tensor_t *t = NULL;
    lc_status st = lc_tensor_new(dtype, device, ndim, shape, &t);
    if (st != LC_OK) return st;
    if ((st = lc_tensor_copy_from_host(t, data, nbytes)) != LC_OK) {
        lc_tensor_free(t);
        return st;
    }
    *out = t;
    return LC_OK;
}

lc_status lc_tensor_wrap_host(void *data, lc_dtype dtype, int ndim, const int64_t *shape, const int64_t *strides,
                              int writable, lc_tensor_t **out) {
    if (!out) return lc_error(LC_ERR_INVALID_ARGUMENT, "tensor_wrap_host: out: expected a pointer, got NULL");
    *out = NULL;
    if (!data) return lc_error(LC_ERR_INVALID_ARGUMENT, "tensor_wrap_host: data: expected a pointer, got NULL");
    lc_status st;
    if ((st = lc_check_dtype(dtype)) != LC_OK || (st = lc_shape_validate("shape", ndim, shape)) != LC_OK) return st;
    int64_t cstrides[LC_MAX_DIMS];
    if (!strides) {
        lc_contiguous_strides(ndim, shape, cstrides);
        strides = cstrides;
    }
    /* The borrowed extent is exactly what the strides reach. */
    int64_t elems = 1;
    for (int i = 0; i < ndim; i++) {
        if (strides[i] < 0)
            return lc_error(LC_ERR_INVALID_ARGUMENT, "tensor_wrap_host: strides: expected >= 0, got %lld at dim %d",
                            (long long)strides[i], i);
        int64_t span;
        if (!lc_mul_ok(shape[i] - 1, strides[i], &span) || elems > INT64_MAX - span)
            return lc_error(LC_ERR_INVALID_ARGUMENT, "tensor_wrap_host: strides: extent overflows at dim %d", i);
        elems += span;
    }
    lc_storage *s = malloc(sizeof *s);
    if (!s) return lc_error(LC_ERR_OUT_OF_MEMORY, "tensor_wrap_host: could not allocate the storage header");
    memset(s, 0, sizeof *s);
    s->data = data;
    s->elems = elems;
    s->device = LC_DEVICE_CPU;
    s->owned = 0;
    s->writable = writable != 0;
    atomic_init(&s->refs, 0);
    st = lc_tensor_make(s, dtype, ndim, shape, strides, 0, 0, out);
    if (st != LC_OK) free(s);
    return st;
}

lc_status lc_tensor_wrap_external(void *data, lc_dtype dtype, lc_device device, int ndim, const int64_t *shape,
                                  const int64_t *strides, int writable, void (*deleter)(void *ctx), void *ctx,
                                  lc_tensor_t **out) {
    if (!out) return lc_error(LC_ERR_INVALID_ARGUMENT, "tensor_wrap_external: out: expected a pointer, got NULL");
    *out = NULL;
    if (!data) return lc_error(LC_ERR_INVALID_ARGUMENT, "tensor_wrap_external: data: expected a pointer, got NULL");
    lc_status st;
    if ((st = lc_check_dtype(dtype)) != LC_OK || (st = lc_shape_validate("shape", ndim, shape)) != LC_OK ||
        (st = lc_check_storage_device(device)) != LC_OK)
        return st;
    int64_t cstrides[LC_MAX_DIMS];
    if (!strides) {
        lc_contiguous_strides(ndim, shape, cstrides);
        strides = cstrides;
    }
    int64_t elems = 1; /* the extent the strides reach */
    for (int i = 0; i < ndim; i++) {
        if (strides[i] < 0)
            return lc_error(LC_ERR_INVALID_ARGUMENT,
                            "tensor_wrap_external: strides: expected >= 0, got %lld at dim %d",
                            (long long)strides[i], i);
        int64_t span;
        if (!lc_mul_ok(shape[i] - 1, strides[i], &span) || elems > INT64_MAX / 8 - span)
            return lc_error(LC_ERR_INVALID_ARGUMENT, "tensor_wrap_external: strides: extent overflows at dim %d", i);
        elems += span;
    }
    lc_storage *s = calloc(1, sizeof *s);
    if (!s) return lc_error(LC_ERR_OUT_OF_MEMORY, "tensor_wrap_external: could not allocate the storage header");
    s->data = data;
    s->elems = elems;
    s->device = device;
    s->owned = 0;
    s->writable = writable != 0;
    s->deleter = deleter;
    s->deleter_ctx = ctx;
    atomic_init(&s->refs, 0);
    st = lc_tensor_make(s, dtype, ndim, shape, strides, 0, 0, out);
    if (st != LC_OK) free(s);
    return st;
}

lc_status lc_tensor_view(const lc_tensor_t *base, int ndim, const int64_t *shape, const int64_t *strides,
                         int64_t offset, lc_device device, lc_tensor_t **out) {
    if (!out) return lc_error(LC_ERR_INVALID_ARGUMENT, "tensor_view: out: expected a pointer, got NULL");
    *out = NULL;
    if (!base) return lc_error(LC_ERR_INVALID_ARGUMENT, "tensor_view: base: expected a tensor, got NULL");
    if (device != LC_DEVICE_AUTO && device != base->storage->device)
        return lc_error(LC_ERR_INVALID_ARGUMENT,
                        "tensor_view: device: a view lives on its tensor's device (%s), got %s",
                        lc_device_name(base->storage->device), lc_device_name(device));
    int64_t cstrides[LC_MAX_DIMS];
    if (!strides) {
        lc_status st = lc_shape_validate("view shape", ndim, shape);
        if (st != LC_OK) return st;
        lc_contiguous_strides(ndim, shape, cstrides);
        strides = cstrides;
    }
    lc_status st = lc_view_validate(base->storage->elems, ndim, shape, strides, offset);
    if (st != LC_OK) return st;
    return lc_tensor_make(base->storage, base->dtype, ndim, shape, strides, offset, 1, out);
}

void lc_tensor_free(lc_tensor_t *t) {
    if (!t) return;
    lc_storage_release(t->storage);
    free(t);
}

int lc_tensor_ndim(const lc_tensor_t *t) { return t ? t->ndim : 0; }
int64_t lc_tensor_dim(const lc_tensor_t *t, int i) { return (t && i >= 0 && i < t->ndim) ? t->shape[i] : 0; }
int64_t lc_tensor_stride(const lc_tensor_t *t, int i) { return (t && i >= 0 && i < t->ndim) ? t->strides[i] : 0; }
const int64_t *lc_tensor_shape(const lc_tensor_t *t) { return t ? t->shape : NULL; }
const int64_t *lc_tensor_strides(const lc_tensor_t *t) { return t ? t->strides : NULL; }
int64_t lc_tensor_offset(const lc_tensor_t *t) { return t ? t->offset : 0; }
int64_t lc_tensor_numel(const lc_tensor_t *t) { return t ? t->numel : 0; }
size_t lc_tensor_nbytes(const lc_tensor_t *t) { return t ? (size_t)t->numel * lc_dtype_size(t->dtype) : 0; }
int64_t lc_tensor_storage_elems(const lc_tensor_t *t) { return t ? t->storage->elems : 0; }
lc_dtype lc_tensor_dtype(const lc_tensor_t *t) { return t ? t->dtype : LC_DTYPE_COUNT; }
lc_device lc_tensor_device(const lc_tensor_t *t) { return t ? t->storage->device : LC_DEVICE_COUNT; }
int lc_tensor_is_writable(const lc_tensor_t *t) { return t ? t->storage->writable : 0; }
int lc_tensor_is_view(const lc_tensor_t *t) { return t ? t->is_view : 0; }

int lc_tensor_is_contiguous(const lc_tensor_t *t) {
    if (!t) return 0;
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->strides[i] != s) return 0;
        s *= t->shape[i];
    }
    return 1;
}

void *lc_tensor_data(const lc_tensor_t *t) {
    if (!t) return NULL;
    return (char *)t->storage->data + (size_t)t->offset * lc_dtype_size(t->dtype);
}

lc_status lc_tensor_validate(const lc_tensor_t *t) {
    if (!t) return lc_error(LC_ERR_INVALID_ARGUMENT, "tensor: expected a tensor, got NULL");
    lc_status st = lc_check_dtype(t->dtype);
    if (st != LC_OK) return st;
    return lc_view_validate(t->storage->elems, t->ndim, t->shape, t->strides, t->offset);
}

/* Gather (to_host) or scatter (from_host) between a strided host tensor and a contiguous buffer. */
static void lc_strided_copy(const lc_tensor_t *t, void *contig, int to_contig) {
    size_t es = lc_dtype_size(t->dtype);
    char *base = (char *)lc_tensor_data(t);
    char *buf = (char *)contig;
    int64_t idx[LC_MAX_DIMS] = {0};
    int last = t->ndim - 1;
    int64_t inner = t->shape[last], inner_stride = t->strides[last];
    for (int64_t done = 0; done < t->numel; done += inner) {
        int64_t off = 0;
        for (int d = 0; d < last; d++) off += idx[d] * t->strides[d];
        char *row = base + (size_t)off * es;
        if (inner_stride == 1) {
            if (to_contig) memcpy(buf, row, (size_t)inner * es);
            else memcpy(row, buf, (size_t)inner * es);
        } else {
            for (int64_t j = 0; j < inner; j++) {
                char *el = row + (size_t)(j * inner_stride) * es;
                if (to_contig) memcpy(buf + (size_t)j * es, el, es);
                else memcpy(el, buf + (size_t)j * es, es);
            }
        }
        buf += (size_t)inner * es;
        for (int d = last - 1; d >= 0; d--) {
            if (++idx[d] < t->shape[d]) break;
            idx[d] = 0;
        }
    }
}

/* The storage span a tensor's elements cover, [offset, offset + extent) (strides are >= 0): a strided view of a
 * device tensor goes through a host copy of it (downloaded, and for writes uploaded back after the scatter);
 * lc_tensor_prefetch asks for it. */
static void lc_device_span(const lc_tensor_t *t, int64_t *first, int64_t *count) {
    int64_t last = t->offset;
    for (int i = 0; i < t->ndim; i++) last += (t->shape[i] - 1) * t->strides[i];
    *first = t->offset;
    *count = last - t->offset + 1;
}

static lc_status lc_device_strided_copy(const lc_tensor_t *t, void *contig, int to_contig) {
    const lc_backend *be = lc_backend_for(t->storage->device);
    const size_t es = lc_dtype_size(t->dtype);
    int64_t first, count;
    lc_device_span(t, &first, &count);
    void *span = lc_aligned_alloc((size_t)count * es);
    if (!span) return lc_error(LC_ERR_OUT_OF_MEMORY, "tensor: could not allocate %zu bytes for a strided device copy",
                               (size_t)count * es);
    char *dev = (char *)t->storage->data + (size_t)first * es;
    lc_status st = be->copy_d2h(span, dev, (size_t)count * es);
    if (st == LC_OK) {
        /* A host header over the span, same strides, offset 0. */
        lc_storage hs = {.data = span, .elems = count, .device = LC_DEVICE_CPU, .owned = 0, .writable = 1};
        lc_tensor_t host = *t;
        host.storage = &hs;
        host.offset = 0;
        lc_strided_copy(&host, contig, to_contig);
        /* copy_h2d returns once it has read the span (staged), so the span can be freed next. */
        if (!to_contig) st = be->copy_h2d(dev, span, (size_t)count * es);
    }
    lc_aligned_free(span);
    return st;
}

lc_status lc_tensor_to_host(const lc_tensor_t *t, void *dst, size_t dst_bytes) {
    if (!t) return lc_error(LC_ERR_INVALID_ARGUMENT, "tensor_to_host: tensor: expected a tensor, got NULL");
    if (!dst) return lc_error(LC_ERR_INVALID_ARGUMENT, "tensor_to_host: dst: expected a pointer, got NULL");
    if (dst_bytes != lc_tensor_nbytes(t))
        return lc_error(LC_ERR_INVALID_ARGUMENT, "tensor_to_host: dst_bytes: expected %zu, got %zu",
                        lc_tensor_nbytes(t), dst_bytes);
    if (t->storage->device != LC_DEVICE_CPU) {
        if (!lc_tensor_is_contiguous(t)) return lc_device_strided_copy(t, dst, 1);
        return lc_backend_for(t->storage->device)->copy_d2h(dst, lc_tensor_data(t), dst_bytes);
    }
    if (lc_tensor_is_contiguous(t)) memcpy(dst, lc_tensor_data(t), dst_bytes);
    else lc_strided_copy(t, dst, 1);
    return LC_OK;
}

lc_status lc_tensor_copy_from_host(lc_tensor_t *t, const void *src, size_t src_bytes) {
    if (!t) return lc_error(LC_ERR_INVALID_ARGUMENT, "tensor_copy_from_host: tensor: expected a tensor, got NULL");
    if (!src) return lc_error(LC_ERR_INVALID_ARGUMENT, "tensor_copy_from_host: src: expected a pointer, got NULL");
    if (!t->storage->writable)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "tensor_copy_from_host: tensor: expected a writable tensor, got a read-only one");
    if (src_bytes != lc_tensor_nbytes(t))
        return lc_error(LC_ERR_INVALID_ARGUMENT, "tensor_copy_from_host: src_bytes: expected %zu, got %zu",
                        lc_tensor_nbytes(t), src_bytes);
    if (t->storage->device != LC_DEVICE_CPU) {
        if (!lc_tensor_is_contiguous(t)) return lc_device_strided_copy(t, (void *)src, 0);
        return lc_backend_for(t->storage->device)->copy_h2d(lc_tensor_data(t), src, src_bytes);
    }
    if (lc_tensor_is_contiguous(t)) memmove(lc_tensor_data(t), src, src_bytes);
    else lc_strided_copy(t, (void *)src, 0);
    return LC_OK;
}

lc_status lc_tensor_prefetch(const lc_tensor_t *const *ts, int n) {
    if (n < 0 || n > LC_PREFETCH_MAX)
        return lc_error(LC_ERR_INVALID_ARGUMENT, "tensor_prefetch: n: expected 0..%d tensors, got %d", LC_PREFETCH_MAX, n);
    if (n > 0 && !ts) return lc_error(LC_ERR_INVALID_ARGUMENT, "tensor_prefetch: tensors: expected an array, got NULL");
    lc_prefetch_args a;
    memset(&a, 0, sizeof a);
    lc_device dev = LC_DEVICE_CPU;
    for (int i = 0; i < n; i++) {
        const lc_tensor_t *t = ts[i];
        if (!t) return lc_error(LC_ERR_INVALID_ARGUMENT, "tensor_prefetch: tensors[%d]: expected a tensor, got NULL", i);
        if (i > 0 && t->storage->device != dev)
            return lc_error(LC_ERR_INVALID_ARGUMENT, "tensor_prefetch: tensors[%d]: expected device %s (tensors[0]'s), got %s",
                            i, lc_device_name(dev), lc_device_name(t->storage->device));
        dev = t->storage->device;
        if (lc_tensor_numel(t) == 0) continue;
        int64_t first, count; /* the storage span of the elements, a strided view's gaps included */
        lc_device_span(t, &first, &count);
        const size_t es = lc_dtype_size(t->dtype);
        a.ptr[a.n] = (const char *)t->storage->data + (size_t)first * es;
        a.bytes[a.n] = (size_t)count * es;
        a.n++;
    }
    const lc_backend *be = a.n > 0 ? lc_backend_for(dev) : NULL;
    if (!be || !be->prefetch) return LC_OK; /* the CPU: nothing that pays */
    return be->prefetch(&a);
}

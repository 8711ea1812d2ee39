/* tune_py.c — Python bindings of the autotuner and the crossover thresholds
 * (include/lightning_core/tune.h): matmul_reset_tuning(), set_autotune(flag), get_autotune(),
 * tune_cache_path() -> str | None, tune_cache_entries() -> list of {"key", "mode", "ms"},
 * conv2d_cpu_crossover_macs(), matmul_cpu_crossover_flops().
 * Tests: tests/python/test_tuning.py. */
#include <stdlib.h>

#include "convert.h"
#include "internal.h"

static PyObject *py_matmul_reset_tuning(PyObject *self, PyObject *noargs) {
    lc_tune_reset();
    Py_RETURN_NONE;
}

static lcpy_sig sig_set_autotune = LCPY_SIG("set_autotune", 1, "flag");

static PyObject *py_set_autotune(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    PyObject *v[1];
    int flag;
    if (lcpy_parse(&sig_set_autotune, args, nargs, kw, v) < 0 || lcpy_bool_arg("set_autotune", "flag", v[0], 1, &flag) < 0)
        return NULL;
    lc_set_autotune(flag);
    Py_RETURN_NONE;
}

static PyObject *py_get_autotune(PyObject *self, PyObject *noargs) { return PyBool_FromLong(lc_get_autotune()); }

static PyObject *py_tune_cache_path(PyObject *self, PyObject *noargs) {
    const char *path;
    Py_BEGIN_ALLOW_THREADS /* the first use loads the file */
    path = lc_tune_cache_path();
    Py_END_ALLOW_THREADS
    if (!path) Py_RETURN_NONE;
    return PyUnicode_DecodeFSDefault(path);
}

static PyObject *py_tune_cache_entries(PyObject *self, PyObject *noargs) {
    size_t n, held;
    lc_tune_entry *buf = NULL;
    Py_BEGIN_ALLOW_THREADS
    held = lc_tune_entry_count();
    Py_END_ALLOW_THREADS
    /* A store between the count and the copy is not seen: the copy takes at most `held` entries. */
    if (held) {
        buf = malloc(held * sizeof *buf);
        if (!buf) return PyErr_NoMemory();
    }
    n = held ? lc_tune_entries(buf, held) : 0;
    PyObject *list = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; list && i < n; i++) {
        PyObject *d = Py_BuildValue("{s:s,s:s,s:d}", "key", buf[i].key, "mode", buf[i].mode, "ms", buf[i].ms);
        if (!d) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, d);
    }
    free(buf);
    return list;
}

static PyObject *py_conv2d_cpu_crossover_macs(PyObject *self, PyObject *noargs) {
    return PyFloat_FromDouble(lc_conv2d_cpu_crossover_macs());
}

static PyObject *py_matmul_cpu_crossover_flops(PyObject *self, PyObject *noargs) {
    return PyFloat_FromDouble(lc_matmul_cpu_crossover_flops());
}

PyMethodDef lcpy_tune_methods[] = {
    LCPY_NOARGS(matmul_reset_tuning,
                "Forgets every tuned choice and the cache file path (LC_TUNE_CACHE_FILE and the crossover "
                "variables are read again at the next use); the file itself is kept."),
    LCPY_METHOD(set_autotune, "($module, /, flag)",
                "Per-shape autotuning on (default) or off (off: the built-in heuristics, no stored choices)."),
    LCPY_NOARGS(get_autotune, "Whether per-shape autotuning is on."),
    LCPY_NOARGS(tune_cache_path, "The tune cache file in use (LC_TUNE_CACHE_FILE), or None when in memory only."),
    LCPY_NOARGS(tune_cache_entries, "List of dicts, in key order: key, mode (the tuned choice), ms (its time)."),
    LCPY_NOARGS(conv2d_cpu_crossover_macs,
                "Device 'auto', host operands: conv2d below this many multiply-adds runs on the CPU "
                "(LC_CONV2D_CPU_CROSSOVER_MACS; negative: the cost model decides)."),
    LCPY_NOARGS(matmul_cpu_crossover_flops,
                "Device 'auto', host operands: matmul/linear below this many flops runs on the CPU "
                "(LC_MATMUL_CPU_CROSSOVER_FLOPS; negative: the cost model decides)."),
    {NULL, NULL, 0, NULL},
};

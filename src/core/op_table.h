/* op_table.h — the op table (internal): one enum for every op the library knows (eager ops, graph ops,
 * aliases and fused ops) and one lc_op_def record per op, in one table (op_table.c): name, inputs
 * (names, ranks, optional ones), dtype mask per backend, attributes and their defaults, the shape rule
 * (`infer`, written once), the work estimate (`work`: flops and bytes, for routing and the cost model),
 * the device limits (`gpu_limit`) and which inputs `out` may alias. Every layer reads it: the eager ops
 * (src/ops/op_eager.c), the graph registry and validation (src/graph/registry.c, validate.c), the
 * planner/fusion/executor (op ids, never strings), the backends' support answer (lc_op_supported), and
 * the Python binding (lc_op_infer_shape, public in ops.h).
 * Error texts name the argument, the expectation and what came: "<prefix>: <who>: expected ..., got ...",
 * where <who> is the eager argument name ("b") or, in the graph, "input 1 'b' (value 'w')".
 * Tests: tests/c/test_op_table.c (every op, infer edge cases, work), and every suite through the readers. */
#ifndef LC_CORE_OP_TABLE_H
#define LC_CORE_OP_TABLE_H

#include <stdint.h>

#include "lightning_core/graph.h"
#include "lightning_core/status.h"
#include "lightning_core/tensor.h"

/* Every op. The graph registry's ops come first, in the registry's order (graph op index == op id). */
typedef enum lc_op {
    LC_OP_MATMUL = 0,
    LC_OP_BIAS_ADD,             /* graph only: runs as lc_linear's bias epilogue or a broadcast add */
    LC_OP_VECTOR_ADD,
    LC_OP_MATRIX_SUB,
    LC_OP_MATRIX_DIV,
    LC_OP_RELU,
    LC_OP_GELU,
    LC_OP_LAYER_NORM,
    LC_OP_ATTENTION,            /* attention_forward */
    LC_OP_ATTENTION_PACKED,     /* graph only: attention over views of qkv [3, seq, d] */
    LC_OP_CONV2D,               /* conv2d_nchw */
    LC_OP_CONV2D_3X3,           /* alias of conv2d_nchw: 3x3 kernels */
    LC_OP_CONV2D_3X3S1P1,       /* alias of conv2d_nchw: 3x3, stride 1, pad 1 fixed */
    LC_OP_QKV_PACK,             /* qkv_pack_repeat */
    LC_OP_SDPA,                 /* scaled_dot_product_attention: batched multi-head, GQA, masks, lengths */
    LC_OP_RMS_NORM,             /* x / sqrt(mean(x²) + eps) * weight over the last axis */
    LC_OP_SOFTMAX,              /* over the last axis */
    LC_OP_SILU,                 /* x * sigmoid(x) */
    LC_OP_SILU_MUL,             /* silu(a) * b (SwiGLU) */
    LC_OP_ADD,                  /* a + b, NumPy broadcasting */
    LC_OP_MUL,                  /* a * b, NumPy broadcasting */
    LC_OP_LINEAR,               /* eager: x·w (+ bias) (+ act) */
    LC_OP_CONV_ATTENTION,       /* fused (internal): conv -> relu -> qkv repeat -> attention */
    LC_OP_ATTENTION_PROJECTION, /* fused (internal): attention -> projection (+ bias) */
    LC_OP_KV_APPEND,            /* internal: the KV cache's append (lc_kv_cache_append) */
    LC_OP_ROPE,                 /* rotary position embedding (eager: lc_rope; attributes outside lc_graph_attrs) */
    LC_OP_EMBEDDING,            /* rows of weight [V, D] gathered by integer ids */
    LC_OP_ARGMAX,               /* index of the largest element over the last axis (int64 out) */
    LC_OP_COPY,                 /* internal: a (strided) tensor into a contiguous one (lc_copy; the backends' gather) */
    LC_OP_SAMPLE,               /* one sampled token per row of logits (eager: lc_sample; options outside attrs) */
    LC_OP_LAYER_NORM_LINEAR,    /* linear(layer_norm(x)): the pre-norm projection of a block as one op */
    LC_OP_RMS_NORM_LINEAR,      /* linear(rms_norm(x)) */
    LC_OP_SILU_MUL_LINEAR,      /* linear(silu_mul(gu[:, :k], gu[:, k:])) (+ residual): SwiGLU's down projection */
    LC_OP_COUNT
} lc_op;
#define LC_OP_NUM 33
#ifdef __cplusplus
static_assert(LC_OP_COUNT == LC_OP_NUM, "lc_op: a new op needs its lc_op_def entry in op_table.c (and LC_OP_NUM)");
#else
_Static_assert(LC_OP_COUNT == LC_OP_NUM, "lc_op: a new op needs its lc_op_def entry in op_table.c (and LC_OP_NUM)");
#endif

#define LC_OP_MAX_INPUTS 5

/* Backend slots of the per-backend dtype masks. */
typedef enum lc_op_backend { LC_OP_BACKEND_CPU = 0, LC_OP_BACKEND_CUDA, LC_OP_BACKEND_COUNT } lc_op_backend;

/* lc_op_def.flags */
enum {
    LC_OPF_GRAPH = 1u << 0,     /* in the graph registry (lc_graph_add takes it by name) */
    LC_OPF_NCHW = 1u << 1,      /* layout nchw (else row-major) */
    LC_OPF_COMPOSITE = 1u << 2, /* no kernel of its own: runs as other ops (see backend_note) */
    LC_OPF_FUSED = 1u << 3,     /* internal fused op: the planner/sessions call it, never the user */
    LC_OPF_OUT_FREE = 1u << 4,  /* eager form: out may have any shape (only its element count matters) */
    LC_OPF_MIXED_DTYPE = 1u << 5, /* inputs need not share one dtype (embedding: float weight, integer ids) */
    LC_OPF_OUT_I64 = 1u << 6,    /* the output is int64 whatever the inputs (argmax, sample) */
    LC_OPF_W_T = 1u << 7         /* input 1 (w [k, n]) may reach a takes_w_t backend as its transpose's storage */
};

#define LC_DT(d) (1u << (d))
#define LC_DT_F32 LC_DT(LC_DTYPE_F32)
#define LC_DT_F64 LC_DT(LC_DTYPE_F64)
#define LC_DT_F16 LC_DT(LC_DTYPE_F16)
#define LC_DT_BF16 LC_DT(LC_DTYPE_BF16)
#define LC_DT_IDX (LC_DT(LC_DTYPE_I32) | LC_DT(LC_DTYPE_I64))

/* Which ops-layer measured crossover decides "auto" instead of the cost model (include/lightning_core/tune.h). */
typedef enum lc_crossover {
    LC_CROSSOVER_NONE = 0,
    LC_CROSSOVER_CONV2D_MACS,  /* conv2d below lc_conv2d_cpu_crossover_macs() multiply-adds (flops / 2) */
    LC_CROSSOVER_MATMUL_FLOPS, /* matmul/linear below lc_matmul_cpu_crossover_flops() flops */
    LC_CROSSOVER_COUNT
} lc_crossover;

/* What a rule sees of an op's operands. shape[i] == NULL: optional input i absent. prefix starts every
 * message ("matmul", "node 'mm' (matmul)"); graph selects the graph form of an argument ("input 1 'b'
 * (value 'w')", value_names[i] being the value's name) over the eager one ("b"). */
typedef struct lc_op_operands {
    const char *prefix;
    int graph;
    int n;
    const char *value_names[LC_OP_MAX_INPUTS];
    const char *arg_names[LC_OP_MAX_INPUTS]; /* a caller's own argument names (NULL: the table's) */
    int ndim[LC_OP_MAX_INPUTS];
    const int64_t *shape[LC_OP_MAX_INPUTS];
    lc_dtype dtype[LC_OP_MAX_INPUTS];
} lc_op_operands;

/* Arithmetic and bytes read + written (at the operands' dtype), for "auto" routing and the cost model. */
typedef struct lc_op_work {
    double flops;      /* all arithmetic */
    double bytes;
    double gemm_flops; /* the part of flops that runs at GEMM rate (cost model) */
} lc_op_work;

typedef struct lc_op_def lc_op_def;

/* The shape rule: checks the relations between the inputs (ranks already checked) and writes the output
 * shape; LC_ERR_SHAPE naming the input, what was expected and what came. */
typedef lc_status (*lc_op_infer_fn)(const lc_op_def *d, const lc_op_operands *in, const lc_graph_attrs *attrs,
                                    int *out_ndim, int64_t *out_shape);
/* Work of one call with these (valid) operands and the inferred output. */
typedef lc_op_work (*lc_op_work_fn)(const lc_op_operands *in, const lc_graph_attrs *attrs, int out_ndim,
                                    const int64_t *out_shape);
/* Why the CUDA kernels cannot take these operands (NULL: they can): the op then runs on the CPU. */
typedef const char *(*lc_op_limit_fn)(const lc_op_operands *in, const lc_graph_attrs *attrs);

struct lc_op_def {
    lc_op op;                  /* its own id (the table is checked against it) */
    const char *name;          /* "matmul": graph name and the eager op's error prefix */
    lc_op runs_as;             /* the op whose kernel runs it (itself; conv aliases: LC_OP_CONV2D) */
    unsigned flags;            /* LC_OPF_* */
    int min_inputs, max_inputs;
    const char *input_names[LC_OP_MAX_INPUTS];
    int input_ranks[LC_OP_MAX_INPUTS]; /* or LC_GRAPH_RANK_ANY */
    int output_rank;           /* or LC_GRAPH_RANK_ANY (input 0's) */
    unsigned inplace_inputs;   /* bit i: out may be exactly input i (same contiguous buffer) */
    unsigned dtypes[LC_OP_BACKEND_COUNT]; /* LC_DT(dtype) bits each backend's kernels take */
    unsigned attrs, required_attrs;       /* LC_GRAPH_ATTR_* taken / without a default */
    lc_graph_attrs defaults;   /* values of the attributes it takes when unset */
    lc_crossover crossover;
    const char *shape_rule;    /* text, e.g. "a [m,k], b [k,n] -> [m,n]" */
    const char *backend_note;  /* how the backends run it */
    lc_op_infer_fn infer;
    lc_op_work_fn work;
    lc_op_limit_fn gpu_limit;  /* NULL: no shape limit on CUDA */
};

/* The entry of op (NULL when out of range). */
const lc_op_def *lc_op_get(lc_op op);
/* The entry named `name` (NULL when none). */
const lc_op_def *lc_op_find(const char *name);
/* Same, as an error: LC_ERR_INVALID_ARGUMENT "<prefix>: op: unknown op 'x' (known: matmul, ...)". */
lc_status lc_op_lookup(const char *prefix, const char *name, const lc_op_def **out);

/* Union of the backends' dtype masks (what the op takes anywhere). */
unsigned lc_op_dtype_mask(const lc_op_def *d);
/* 1 when the backend built for `device` (cpu or cuda) has a kernel for op at dtype: the table's mask for
 * that backend, and (unless the op is composite) the backend's kernel slot of runs_as. Not whether the
 * device is available now. */
int lc_op_supported(lc_op op, lc_device device, lc_dtype dtype);

/* Input i's argument name: the caller's (arg_names) or the table's. */
const char *lc_op_arg_name(const lc_op_def *d, const lc_op_operands *in, int i);
/* "input 1 'b' (value 'w')" or "b" into buf. */
void lc_op_describe_input(char *buf, size_t size, const lc_op_def *d, const lc_op_operands *in, int i);
/* "[2, 3, 4]" into buf. */
void lc_op_format_shape(char *buf, size_t size, int ndim, const int64_t *shape);

/* The shared checks, each with its own status: input count (LC_ERR_SHAPE); attributes taken, required
 * ones given, values in range (LC_ERR_INVALID_ARGUMENT; `resolved` may be NULL, `given` may be NULL);
 * dtypes (LC_ERR_DTYPE: each one the op takes, all of one dtype unless LC_OPF_MIXED_DTYPE); ranks
 * (LC_ERR_SHAPE). The dtype written to *dtype (may be NULL) is the operands' common dtype. */
lc_status lc_op_check_arity(const lc_op_def *d, const char *prefix, int ninputs);
lc_status lc_op_check_attrs(const lc_op_def *d, const char *prefix, int graph, const lc_graph_attrs *given,
                            lc_graph_attrs *resolved);
lc_status lc_op_check_dtypes(const lc_op_def *d, const lc_op_operands *in, lc_dtype *dtype);
lc_status lc_op_check_ranks(const lc_op_def *d, const lc_op_operands *in);
/* Ranks, then the shape rule, then the output's element count (fits in int64, LC_ERR_SHAPE). */
lc_status lc_op_infer(const lc_op_def *d, const lc_op_operands *in, const lc_graph_attrs *attrs, int *out_ndim,
                      int64_t *out_shape);

/* The conv output extent along one axis: (in + 2*pad - kernel) / stride + 1, or -1 when the kernel does not
 * fit the padded input (or the sum overflows). The one place this rule is written. */
int64_t lc_conv_out_extent(int64_t in, int64_t kernel, int64_t stride, int64_t pad);

#endif

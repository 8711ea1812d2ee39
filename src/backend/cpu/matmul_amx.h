/* matmul_amx.h — the AMX-BF16 bfloat16 matmul (matmul_amx_cpu.c), chosen by matmul_lowp_cpu.c ahead of the
 * AVX-512 BF16 kernel when lc_cpu_amx_ready() says the CPU and the OS allow it.
 * Tests: tests/c/test_amx_emu.c (the driver with emulated tiles), tests/c/test_lowp.c, test_lowp_ops.c. */
#ifndef LC_MATMUL_AMX_H
#define LC_MATMUL_AMX_H

#include "core/backend.h"

/* 1 when AMX-BF16 tiles may be used: the CPU has AMX-BF16 and AVX-512 BW (after LC_CPU_DISABLE masks) and
 * the OS granted this process the tile data state (Linux arch_prctl, requested once, thread-safe). */
int lc_cpu_amx_ready(void);

/* c[m,n] = a[m,k]·b[k,n], all bfloat16 (args->dtype must be BF16), float32 sums rounded once into args->c,
 * or, with c_f32 non-NULL, left unrounded there ([m,n] float32) and args->c untouched. Path "amx_bf16".
 * Only call when lc_cpu_amx_ready(); errors: LC_ERR_OUT_OF_MEMORY / size overflow, nothing written. */
lc_status lc_cpu_matmul_amx_bf16(const lc_matmul_args *args, float *c_f32, const char **path);

#endif

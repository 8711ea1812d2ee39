/* matmul_amx_real.h — the tile operations of matmul_amx_impl.h as the real AMX instructions (GCC/Clang
 * intrinsics), for its includers that run on AMX hardware: src/backend/cpu/matmul_amx_cpu.c (the shipped
 * driver) and scripts/probes/amx_probe.c (its phases timed on an AMX host). tests/c/test_amx_emu.c defines
 * the same macros with an emulation instead. Include before matmul_amx_impl.h, x86-64 with GCC or Clang only. */
#ifndef LC_MATMUL_AMX_REAL_H
#define LC_MATMUL_AMX_REAL_H

#include <immintrin.h>

/* GCC's tile intrinsics are asm statements that do not tell the compiler which memory they touch
 * (ldtilecfg names 8 of its 64 bytes, tilestored names none). So a compiler barrier that publishes the
 * pointer ("r"(p), "memory") precedes ldtilecfg (all 64 configuration bytes are stored first) and
 * surrounds every tilestored (the C reads of the stored sums in amx_write_block can move neither before
 * the store nor past the next one). No C code writes memory that a tileloadd of the same function reads. */
#define AMX_BARRIER(p) __asm__ volatile("" : : "r"(p) : "memory")
#define AMX_FN __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl")))
#define AMX_LOADCONFIG(cfg) \
    do {                    \
        AMX_BARRIER(cfg);   \
        _tile_loadconfig(cfg); \
    } while (0)
#define AMX_ZERO(t) _tile_zero(t)
#define AMX_LOAD(t, p, s) _tile_loadd(t, p, s)
#define AMX_DP(c, a, b) _tile_dpbf16ps(c, a, b)
#define AMX_STORE(t, p, s)     \
    do {                       \
        AMX_BARRIER(p);        \
        _tile_stored(t, p, s); \
        AMX_BARRIER(p);        \
    } while (0)
#define AMX_RELEASE() _tile_release()

#endif

// Cauchy sums  s1[b, i] = sum_j a[b, j] / (p[b, i] - q[b, j])  (and s2 with the squared
// denominator), templated on the real type.  Included by cauchy_cplx64.cu / cauchy_cplx128.cu;
// the C-style API is in cauchy.h.
//
// Work decomposition: a block of kCauchyThreads threads owns up to kCauchyThreads *
// kCauchyOutPerThread outputs i of one batch row b and a range of nodes j.  Nodes (q, a) are
// staged through shared memory one tile at a time and reused for each thread's outputs.  Threads
// are (output lane, node group) pairs: with many outputs (forward: I = L) there is one group, every
// thread reads the same node (a broadcast) and outputs are strided by the block size (coalesced);
// with few outputs (backward: I = N) the G = kCauchyThreads / lanes groups take every G-th node of
// a tile and their partial sums are added in shared memory, so no thread idles.  When
// (batch x output blocks) alone cannot fill the GPU -- the backward pass has J = L long -- the node
// range is also split over blocks and the caller adds up the partial sums: deterministic, unlike
// atomics.
#pragma once

#include "../common/complex_math.cuh"
#include "cauchy.h"

namespace ssm_cuda {

constexpr int kCauchyThreads = 128;
constexpr int kCauchyOutPerThread = 2;
constexpr int kCauchyTile = kCauchyThreads;  // nodes per shared-memory tile
constexpr int64_t kMaxGridY = 65535;

// acc1 += a / d and acc2 += a / d^2 with d = p - q, through a / d = a conj(d) / |d|^2:
// one reciprocal and ~10 FMA-class instructions per term (14 more for s2).
template <typename R, typename C, bool WANT_S2>
__device__ __forceinline__ void cauchy_term(const C pp, const R qx, const R qy, const R ax,
                                            const R ay, C& acc1, C& acc2) {
    const R dx = pp.x - qx;
    const R dy = pp.y - qy;
    const R inv = recip(dx * dx + dy * dy);
    const R tx = (ax * dx + ay * dy) * inv;
    const R ty = (ay * dx - ax * dy) * inv;
    acc1.x += tx;
    acc1.y += ty;
    if (WANT_S2) {
        acc2.x += (tx * dx + ty * dy) * inv;
        acc2.y += (ty * dx - tx * dy) * inv;
    }
}

template <typename R, bool CONJ, bool WANT_S2>
__global__ void __launch_bounds__(kCauchyThreads)
    cauchy_sums_kernel(const typename complex_of<R>::type* __restrict__ p, int64_t p_bs,
                       const typename complex_of<R>::type* __restrict__ q, int64_t q_bs,
                       const typename complex_of<R>::type* __restrict__ a,
                       typename complex_of<R>::type* __restrict__ s1,
                       typename complex_of<R>::type* __restrict__ s2, int64_t batch, int I, int J,
                       int j_chunk, int i_blocks, int lanes_log2) {
    using C = typename complex_of<R>::type;
    constexpr int RO = kCauchyOutPerThread;
    __shared__ C q_sh[kCauchyTile];
    __shared__ C a_sh[kCauchyTile];
    __shared__ C red1[RO * kCauchyThreads];  // node-group partial sums (only when G > 1)
    __shared__ C red2[RO * kCauchyThreads];
    const int tid = threadIdx.x;
    const int lanes = 1 << lanes_log2;
    const int i_lane = tid & (lanes - 1);
    const int grp = tid >> lanes_log2;
    const int G = kCauchyThreads >> lanes_log2;
    const int split = blockIdx.x / i_blocks;
    const int i_block = blockIdx.x - split * i_blocks;
    const int n_split = gridDim.x / i_blocks;
    const int j_begin = split * j_chunk;
    const int j_end = J - j_begin < j_chunk ? J : j_begin + j_chunk;
    const int i_first = i_block * (lanes * RO) + i_lane;

    for (int64_t b = blockIdx.y; b < batch; b += gridDim.y) {
        C pp[RO], acc1[RO], acc2[RO];
#pragma unroll
        for (int r = 0; r < RO; ++r) {
            const int i = i_first + r * lanes;
            // Threads past I evaluate at p = 0 and store nothing.
            pp[r] = i < I ? p[b * p_bs + i] : cmake(R(0), R(0));
            acc1[r] = cmake(R(0), R(0));
            acc2[r] = cmake(R(0), R(0));
        }
        for (int j0 = j_begin; j0 < j_end; j0 += kCauchyTile) {
            const int cnt = min(kCauchyTile, j_end - j0);
            __syncthreads();  // the previous tile is consumed by every thread
            if (tid < cnt) {
                q_sh[tid] = q[b * q_bs + j0 + tid];
                a_sh[tid] = a[b * J + j0 + tid];
            }
            __syncthreads();
#pragma unroll 4
            for (int jj = grp; jj < cnt; jj += G) {
                const C qq = q_sh[jj];
                const C aa = a_sh[jj];
#pragma unroll
                for (int r = 0; r < RO; ++r) {
                    cauchy_term<R, C, WANT_S2>(pp[r], qq.x, qq.y, aa.x, aa.y, acc1[r], acc2[r]);
                    if (CONJ)  // conj(a) / (p - conj(q))
                        cauchy_term<R, C, WANT_S2>(pp[r], qq.x, -qq.y, aa.x, -aa.y, acc1[r], acc2[r]);
                }
            }
        }
        if (G > 1) {  // add the node groups' partial sums (block-uniform branch)
#pragma unroll
            for (int r = 0; r < RO; ++r) {
                red1[r * kCauchyThreads + tid] = acc1[r];
                if (WANT_S2) red2[r * kCauchyThreads + tid] = acc2[r];
            }
            __syncthreads();
            for (int stride = G >> 1; stride > 0; stride >>= 1) {
                if (grp < stride) {
#pragma unroll
                    for (int r = 0; r < RO; ++r) {
                        const int o = r * kCauchyThreads + tid;
                        red1[o] = cadd(red1[o], red1[o + stride * lanes]);
                        if (WANT_S2) red2[o] = cadd(red2[o], red2[o + stride * lanes]);
                    }
                }
                __syncthreads();
            }
#pragma unroll
            for (int r = 0; r < RO; ++r) {
                acc1[r] = red1[r * kCauchyThreads + tid];
                if (WANT_S2) acc2[r] = red2[r * kCauchyThreads + tid];
            }
            __syncthreads();  // red1/red2 are rewritten for the next row
        }
        if (grp == 0) {
#pragma unroll
            for (int r = 0; r < RO; ++r) {
                const int i = i_first + r * lanes;
                if (i < I) {
                    const int64_t o = (b * n_split + split) * static_cast<int64_t>(I) + i;
                    s1[o] = acc1[r];
                    if (WANT_S2) s2[o] = acc2[r];
                }
            }
        }
    }
}

// log2 of the output lanes per block: enough lanes for I outputs (kCauchyOutPerThread each), at
// most one per thread; the remaining threads form node groups.
inline int cauchy_lanes_log2(int64_t I) {
    const int64_t need = ceil_div(I > 0 ? I : 1, kCauchyOutPerThread);
    int lg = 0;
    while ((int64_t(1) << lg) < need && (1 << lg) < kCauchyThreads) ++lg;
    return lg;
}

// Node-range length per block (a multiple of the tile): the whole range unless the grid over
// (batch, output blocks) has fewer than ~8 blocks per multiprocessor.
inline int64_t cauchy_j_chunk(int64_t batch, int64_t I, int64_t J) {
    const int64_t tiles = ceil_div(J > 0 ? J : 1, kCauchyTile);
    const int64_t rows = batch < kMaxGridY ? (batch > 0 ? batch : 1) : kMaxGridY;
    const int64_t per_block = (int64_t(1) << cauchy_lanes_log2(I)) * kCauchyOutPerThread;
    const int64_t base_blocks = rows * ceil_div(I > 0 ? I : 1, per_block);
    const int sms = sm_count();
    const int64_t target = 8 * static_cast<int64_t>(sms > 0 ? sms : 132);
    int64_t n_split = 1;
    if (base_blocks < target) n_split = ceil_div(target, base_blocks);
    if (n_split > tiles) n_split = tiles;
    return ceil_div(tiles, n_split) * kCauchyTile;
}

template <typename R>
cudaError_t launch_cauchy_sums(const typename complex_of<R>::type* p, int64_t p_bs,
                               const typename complex_of<R>::type* q, int64_t q_bs,
                               const typename complex_of<R>::type* a, typename complex_of<R>::type* s1,
                               typename complex_of<R>::type* s2, int64_t batch, int64_t I, int64_t J,
                               int64_t j_chunk, int conj, cudaStream_t stream) {
    if (I >= (int64_t(1) << 30) || J >= (int64_t(1) << 30) || j_chunk <= 0 || j_chunk % kCauchyTile != 0)
        return cudaErrorInvalidValue;
    if (batch <= 0 || I <= 0) return cudaSuccess;
    const int lanes_log2 = cauchy_lanes_log2(I);
    const int64_t i_blocks = ceil_div(I, (int64_t(1) << lanes_log2) * kCauchyOutPerThread);
    const int64_t n_split = J > 0 ? ceil_div(J, j_chunk) : 1;
    if (i_blocks * n_split >= (int64_t(1) << 31)) return cudaErrorInvalidConfiguration;
    const dim3 grid(static_cast<unsigned>(i_blocks * n_split),
                    static_cast<unsigned>(batch < kMaxGridY ? batch : kMaxGridY));
    const int jc = static_cast<int>(j_chunk < J ? j_chunk : (J > 0 ? J : 1));
    const int ib = static_cast<int>(i_blocks), ii = static_cast<int>(I), jj = static_cast<int>(J);
    const bool want_s2 = s2 != nullptr;
    const int lg = lanes_log2;
    if (conj && want_s2)
        cauchy_sums_kernel<R, true, true>
            <<<grid, kCauchyThreads, 0, stream>>>(p, p_bs, q, q_bs, a, s1, s2, batch, ii, jj, jc, ib, lg);
    else if (conj)
        cauchy_sums_kernel<R, true, false>
            <<<grid, kCauchyThreads, 0, stream>>>(p, p_bs, q, q_bs, a, s1, s2, batch, ii, jj, jc, ib, lg);
    else if (want_s2)
        cauchy_sums_kernel<R, false, true>
            <<<grid, kCauchyThreads, 0, stream>>>(p, p_bs, q, q_bs, a, s1, s2, batch, ii, jj, jc, ib, lg);
    else
        cauchy_sums_kernel<R, false, false>
            <<<grid, kCauchyThreads, 0, stream>>>(p, p_bs, q, q_bs, a, s1, s2, batch, ii, jj, jc, ib, lg);
    return cudaGetLastError();
}

}  // namespace ssm_cuda

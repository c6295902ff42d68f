// Vandermonde products of the diagonal SSM kernel (S4D/DSS) and of states-from-inputs,
// templated on the real type.  Included by vandermonde_cplx64.cu / vandermonde_cplx128.cu; the
// C-style API is in vandermonde.h.
//
// Powers exp(x l) come from a short recurrence anchored on an accurate exponential: a thread
// evaluates exp(x l0) directly (cexp_times: exact product, reduced phase) and then multiplies by
// a fixed step T - 1 times, so most terms cost one complex multiply-add instead of an exp and a
// sincos.  The recurrence adds ~1 ulp per step (<= ~T ulp in all); re-anchoring every T steps
// keeps that bounded independently of L, while a naive complex64 exp(x * l) has a phase error
// that grows like |Im(x)| l ulp.
#pragma once

#include "../common/complex_math.cuh"
#include "vandermonde.h"

namespace ssm_cuda {

constexpr int kVandThreads = 128;  // forward: threads per block = modes per shared tile
constexpr int kVtThreads = 256;    // transposed: threads per block
constexpr int kVtSteps = 16;       // transposed: recurrence steps per accurate anchor
constexpr int64_t kVtMaxChunk = 2048;
constexpr int64_t kVandGridY = 65535;

// ---------------------------------------------------------------------------------------------
// Forward: a block owns T * kVandThreads positions l of one row b; thread t computes the outputs
// l = l_first + k * kVandThreads (k < T; coalesced stores), anchoring at l_first and stepping by
// exp(x * kVandThreads), which is computed once per mode and tile and shared.
template <typename R, bool CONJ, int T>
__global__ void __launch_bounds__(kVandThreads)
    vandermonde_kernel(const typename complex_of<R>::type* __restrict__ v,
                       const typename complex_of<R>::type* __restrict__ x,
                       typename complex_of<R>::type* __restrict__ out, R* __restrict__ out_real,
                       int64_t batch, int N, int64_t L) {
    using C = typename complex_of<R>::type;
    __shared__ C v_sh[kVandThreads];
    __shared__ C x_sh[kVandThreads];
    __shared__ C step_sh[kVandThreads];
    const int tid = threadIdx.x;
    const int64_t l_first = static_cast<int64_t>(blockIdx.x) * (kVandThreads * T) + tid;
    const R lf = static_cast<R>(l_first);

    for (int64_t b = blockIdx.y; b < batch; b += gridDim.y) {
        C acc[T];
#pragma unroll
        for (int k = 0; k < T; ++k) acc[k] = cmake(R(0), R(0));
        for (int n0 = 0; n0 < N; n0 += kVandThreads) {
            const int cnt = min(kVandThreads, N - n0);
            __syncthreads();
            if (tid < cnt) {
                const C xv = x[b * N + n0 + tid];
                x_sh[tid] = xv;
                v_sh[tid] = v[b * N + n0 + tid];
                step_sh[tid] = cexp_times(xv.x, xv.y, static_cast<R>(kVandThreads));
            }
            __syncthreads();
            for (int nn = 0; nn < cnt; ++nn) {
                const C xv = x_sh[nn];
                const C step = step_sh[nn];
                C w = cmul(v_sh[nn], cexp_times(xv.x, xv.y, lf));  // v exp(x l)
#pragma unroll
                for (int k = 0; k < T; ++k) {
                    if (CONJ) {
                        acc[k].x += w.x;  // only the real part is needed
                    } else {
                        acc[k] = cadd(acc[k], w);
                    }
                    if (k + 1 < T) w = cmul(w, step);
                }
            }
        }
#pragma unroll
        for (int k = 0; k < T; ++k) {
            const int64_t l = l_first + static_cast<int64_t>(k) * kVandThreads;
            if (l < L) {
                if (CONJ) {
                    out_real[b * L + l] = R(2) * acc[k].x;
                } else {
                    out[b * L + l] = acc[k];
                }
            }
        }
    }
}

template <typename R, bool CONJ>
cudaError_t launch_vandermonde_impl(const typename complex_of<R>::type* v,
                                    const typename complex_of<R>::type* x,
                                    typename complex_of<R>::type* out, R* out_real, int64_t batch,
                                    int64_t N, int64_t L, int64_t max_l, cudaStream_t stream) {
    if (N >= (int64_t(1) << 30) || L > max_l || batch < 0 || N < 0 || L < 0) return cudaErrorInvalidValue;
    if (batch == 0 || L == 0) return cudaSuccess;
    const int64_t rows = batch < kVandGridY ? batch : kVandGridY;
    const int sms = sm_count();
    const int64_t target = 4 * static_cast<int64_t>(sms > 0 ? sms : 132);
    const int n = static_cast<int>(N);
    // Long rows: 16 outputs per thread amortise the anchor exponential; short ones: 2, to keep
    // enough blocks in flight.
    if (rows * ceil_div(L, kVandThreads * 16) >= target) {
        const dim3 grid(static_cast<unsigned>(ceil_div(L, kVandThreads * 16)), static_cast<unsigned>(rows));
        vandermonde_kernel<R, CONJ, 16><<<grid, kVandThreads, 0, stream>>>(v, x, out, out_real, batch, n, L);
    } else {
        const dim3 grid(static_cast<unsigned>(ceil_div(L, kVandThreads * 2)), static_cast<unsigned>(rows));
        vandermonde_kernel<R, CONJ, 2><<<grid, kVandThreads, 0, stream>>>(v, x, out, out_real, batch, n, L);
    }
    return cudaGetLastError();
}

// ---------------------------------------------------------------------------------------------
// Transposed: a block owns a chunk of positions l of one row b and loops over all modes n in
// tiles of NT lanes (NT = min(32, next power of two >= N)).  Thread (s, n_local) sums the
// sub-chunks s, s + S, ... (S = kVtThreads / NT) of kVtSteps positions each; the S partial sums
// per mode are then reduced in shared memory.  u is staged in shared memory as
// u_sh[k * subs + sub] so that the lanes of a warp, which hold consecutive sub-chunks, read
// consecutive words.
template <typename R, typename C>
__device__ __forceinline__ C times_u(const C e, const R uu) { return cmake(uu * e.x, uu * e.y); }
template <typename R, typename C>
__device__ __forceinline__ C times_u(const C e, const C uu) { return cmul(uu, e); }

template <typename R, typename U, bool WEIGHTED>
__global__ void __launch_bounds__(kVtThreads)
    vandermonde_t_kernel(const U* __restrict__ u, const typename complex_of<R>::type* __restrict__ x,
                         typename complex_of<R>::type* __restrict__ part0,
                         typename complex_of<R>::type* __restrict__ part1, int64_t batch, int N, int64_t L,
                         int chunk, int nt_log2) {
    using C = typename complex_of<R>::type;
    extern __shared__ __align__(16) unsigned char vt_smem[];
    C* red0 = reinterpret_cast<C*>(vt_smem);
    C* red1 = red0 + kVtThreads;
    U* u_sh = reinterpret_cast<U*>(red1 + kVtThreads);

    const int tid = threadIdx.x;
    const int nt = 1 << nt_log2;
    const int n_local = tid & (nt - 1);
    const int s = tid >> nt_log2;
    const int S = kVtThreads >> nt_log2;
    const int64_t c0 = static_cast<int64_t>(blockIdx.x) * chunk;
    const int cnt = static_cast<int>(L - c0 < chunk ? L - c0 : chunk);
    const int subs = chunk / kVtSteps;
    const int subs_used = (cnt + kVtSteps - 1) / kVtSteps;
    const C zero = cmake(R(0), R(0));

    for (int64_t b = blockIdx.y; b < batch; b += gridDim.y) {
        __syncthreads();
        for (int idx = tid; idx < chunk; idx += kVtThreads) {
            const int sub = idx / kVtSteps;
            const int k = idx - sub * kVtSteps;
            u_sh[k * subs + sub] = idx < cnt ? u[b * L + c0 + idx] : U();
        }
        __syncthreads();
        for (int n0 = 0; n0 < N; n0 += nt) {
            const int n = n0 + n_local;
            const bool valid = n < N;
            const C xv = valid ? x[b * N + n] : zero;
            const C step = cexp_times(xv.x, xv.y, R(1));
            C acc0 = zero, acc1 = zero;
            for (int sub = s; sub < subs_used; sub += S) {
                const int64_t l0 = c0 + static_cast<int64_t>(sub) * kVtSteps;
                const int kmax = cnt - sub * kVtSteps;
                C e = cexp_times(xv.x, xv.y, static_cast<R>(l0));
                R lf = static_cast<R>(l0);
#pragma unroll
                for (int k = 0; k < kVtSteps; ++k) {
                    if (k < kmax) {  // never touch positions >= L: exp(x l) may overflow there
                        const C t = times_u<R, C>(e, u_sh[k * subs + sub]);
                        acc0 = cadd(acc0, t);
                        if (WEIGHTED) {
                            acc1.x += lf * t.x;
                            acc1.y += lf * t.y;
                            lf += R(1);
                        }
                        e = cmul(e, step);
                    }
                }
            }
            red0[tid] = acc0;
            if (WEIGHTED) red1[tid] = acc1;
            __syncthreads();
            for (int stride = S >> 1; stride > 0; stride >>= 1) {
                if (s < stride) {
                    red0[tid] = cadd(red0[tid], red0[tid + stride * nt]);
                    if (WEIGHTED) red1[tid] = cadd(red1[tid], red1[tid + stride * nt]);
                }
                __syncthreads();
            }
            if (s == 0 && valid) {
                const int64_t o = (b * gridDim.x + blockIdx.x) * static_cast<int64_t>(N) + n;
                part0[o] = red0[tid];
                if (WEIGHTED) part1[o] = red1[tid];
            }
            __syncthreads();  // red0/red1 are reused by the next tile of modes
        }
    }
}

inline int vt_nt_log2(int64_t N) {
    int lg = 0;
    while ((int64_t(1) << lg) < N && lg < 5) ++lg;
    return lg;
}

// Positions per block: the largest power-of-two multiple of one sub-chunk per thread that is
// <= kVtMaxChunk, not much longer than L, and still leaves ~8 blocks per multiprocessor.
inline int64_t vandermonde_t_chunk(int64_t batch, int64_t N, int64_t L) {
    const int64_t base = static_cast<int64_t>(kVtThreads >> vt_nt_log2(N)) * kVtSteps;
    int64_t chunk = base;
    while (chunk * 2 <= kVtMaxChunk) chunk *= 2;
    const int64_t rows = batch < kVandGridY ? (batch > 0 ? batch : 1) : kVandGridY;
    const int sms = sm_count();
    const int64_t target = 8 * static_cast<int64_t>(sms > 0 ? sms : 132);
    while (chunk > base && (chunk / 2 >= L || rows * ceil_div(L, chunk) < target)) chunk /= 2;
    return chunk;
}

template <typename R, typename U>
cudaError_t launch_vandermonde_t(const U* u, const typename complex_of<R>::type* x,
                                 typename complex_of<R>::type* part0, typename complex_of<R>::type* part1,
                                 int64_t batch, int64_t N, int64_t L, int64_t chunk, int64_t max_l,
                                 cudaStream_t stream) {
    using C = typename complex_of<R>::type;
    const int nt_log2 = vt_nt_log2(N);
    const int64_t base = static_cast<int64_t>(kVtThreads >> nt_log2) * kVtSteps;
    if (N >= (int64_t(1) << 30) || L > max_l || batch < 0 || N < 0 || L < 0 || chunk <= 0 ||
        chunk > kVtMaxChunk || chunk % base != 0)
        return cudaErrorInvalidValue;
    if (batch == 0 || N == 0 || L == 0) return cudaSuccess;
    const dim3 grid(static_cast<unsigned>(ceil_div(L, chunk)),
                    static_cast<unsigned>(batch < kVandGridY ? batch : kVandGridY));
    const size_t smem = 2 * kVtThreads * sizeof(C) + static_cast<size_t>(chunk) * sizeof(U);
    const int n = static_cast<int>(N), c = static_cast<int>(chunk);
    if (part1 != nullptr)
        vandermonde_t_kernel<R, U, true><<<grid, kVtThreads, smem, stream>>>(u, x, part0, part1, batch, n, L, c, nt_log2);
    else
        vandermonde_t_kernel<R, U, false><<<grid, kVtThreads, smem, stream>>>(u, x, part0, part1, batch, n, L, c, nt_log2);
    return cudaGetLastError();
}

template <typename R>
cudaError_t launch_vandermonde_t_any(const typename complex_of<R>::type* u_complex, const R* u_real,
                                     const typename complex_of<R>::type* x,
                                     typename complex_of<R>::type* part0, typename complex_of<R>::type* part1,
                                     int64_t batch, int64_t N, int64_t L, int64_t chunk, int64_t max_l,
                                     cudaStream_t stream) {
    if ((u_complex == nullptr) == (u_real == nullptr)) return cudaErrorInvalidValue;
    if (u_real != nullptr) return launch_vandermonde_t<R, R>(u_real, x, part0, part1, batch, N, L, chunk, max_l, stream);
    return launch_vandermonde_t<R, typename complex_of<R>::type>(u_complex, x, part0, part1, batch, N, L, chunk,
                                                                 max_l, stream);
}

}  // namespace ssm_cuda

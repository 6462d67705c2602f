using System.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Normalization;

/// <summary>
/// The full-size passes of Batch Normalization, written directly over the memory of contiguous CPU float32/float64
/// tensors seen as N×C×L (L = the product of the spatial axes; 1 for 1d input). Two kernels do all the work: a
/// per-channel reduction (Σ(u − c_u) and Σ(u − c_u)·(v − c_v) in one pass) and a per-channel affine combination
/// (out = a·u + b·x + d in one pass). Forward is one reduction (shifted sums; see <see cref="Moments"/>) and one
/// combination; backward is one reduction (Σ∂ℓ/∂y and Σ∂ℓ/∂y·(x − μ)) and one combination: 2 + 2 passes, against
/// libtorch's 3 + 2, with no full-size temporary.
/// </summary>
/// <remarks>
/// <para>Inputs are float32 or float64 CPU tensors of rank ≥ 2 (the layers validate this). A 4-d tensor stored
/// channels-last (N×C×H×W laid out as N×H×W×C, see <see cref="IsChannelsLast"/>) is walked in place as N·H·W rows of
/// C values (L = 1), and outputs keep that layout; any other non-contiguous input is made contiguous first. Loops are
/// vectorized with <see cref="Vector{T}"/>. Each channel's values are N runs of L contiguous values: when L holds at
/// least two vectors the loops run along L (one run per channel and sample);
/// otherwise along whole rows of C·L values with per-position coefficients, which vectorizes across channels (the 1d
/// case); row-wise reductions sum <see cref="RowBlock"/> rows in registers at a time.</para>
/// <para>Sums accumulate in T within a run (or a group of <see cref="RowsPerFlush"/> rows) and in double across runs,
/// so float32 sums over large batches keep their precision. Scratch arrays come from the shared array pools.</para>
/// <para>Work is split over <see cref="torch.get_num_threads"/> threads (the caller's libtorch setting) when the input
/// has at least <see cref="ParallelGrain"/> values, libtorch's own grain size: for the reductions by channel (along L),
/// by range of row positions (wide rows), or by chunks of <see cref="RowChunk"/> rows whose partial sums are added in
/// chunk order (narrow rows in large numbers, as channels-last input gives), so results never depend on the thread
/// count; by run or row for the combination.</para>
/// </remarks>
internal static unsafe class ChannelKernels
{
    /// <summary>Inputs smaller than this run on one thread (libtorch's grain size for its parallel loops).</summary>
    private const long ParallelGrain = 32768;

    /// <summary>Row-wise loops add their T accumulators into double sums every this many rows.</summary>
    private const int RowsPerFlush = 64;

    /// <summary>Rows of at most this many values, in large numbers, are reduced in chunks of rows rather than ranges of positions.</summary>
    private const long NarrowRow = 256;

    /// <summary>Rows per chunk of a narrow-row reduction (a multiple of <see cref="RowsPerFlush"/>).</summary>
    private const long RowChunk = 1024;

    /// <summary>Row-wise reductions sum this many rows in registers before adding into their accumulators.</summary>
    private const int RowBlock = 4;

    /// <summary>
    /// Per channel: <paramref name="sumU"/> = Σ(u − <paramref name="centerU"/>) and <paramref name="sumCross"/> =
    /// Σ(u − <paramref name="centerU"/>)·(v − <paramref name="centerV"/>) (centres null = 0; v null = u), each only when its
    /// array is given, in one read.
    /// </summary>
    public static void Reduce(Tensor u, Tensor? v, double[]? centerU, double[]? centerV, double[]? sumU, double[]? sumCross)
    {
        using var scope = torch.NewDisposeScope();
        bool channelsLast = IsChannelsLast(v ?? u);
        var shape = Shape.Of(u, channelsLast);
        Tensor uc = Memory(u, channelsLast), vc = v is null ? uc : Memory(v, channelsLast);
        ReduceAt(shape, Address(uc), Address(vc), centerU, centerV, sumU, sumCross);
    }

    /// <summary><see cref="Reduce"/> over contiguous memory already located (v = u: <paramref name="pv"/> = <paramref name="pu"/>).</summary>
    private static void ReduceAt(Shape shape, nint pu, nint pv, double[]? centerU, double[]? centerV, double[]? sumU, double[]? sumCross)
    {
        if (shape.Single)
            Reducer<float>.Run(shape, pu, pv, centerU, centerV, sumU, sumCross);
        else
            Reducer<double>.Run(shape, pu, pv, centerU, centerV, sumU, sumCross);
    }

    /// <summary>
    /// A new tensor shaped like <paramref name="x"/>, and stored channels-last when x is: a·u + b·x + d with per-channel
    /// a, b, d (u and a may be null: b·x + d).
    /// </summary>
    public static Tensor Combine(Tensor? u, double[]? a, Tensor x, double[] b, double[] d)
    {
        using var scope = torch.NewDisposeScope();
        bool channelsLast = IsChannelsLast(x);
        var shape = Shape.Of(x, channelsLast);
        Tensor xc = Memory(x, channelsLast), uc = u is null ? xc : Memory(u, channelsLast);
        var output = torch.empty(xc.shape, x.dtype);
        nint pu = u is null ? 0 : Address(uc), px = Address(xc), po = Address(output);
        if (shape.Single)
            Combiner<float>.Run(shape, pu, a, px, b, d, po);
        else
            Combiner<double>.Run(shape, pu, a, px, b, d, po);
        return (channelsLast ? output.permute(0, 3, 1, 2) : output).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Per channel mean μ and biased variance σ² = Σ(x − μ)²/m of <paramref name="x"/>, usually in one read: the sums
    /// of x − K and (x − K)² about a shift K per channel (see <see cref="Shift"/>), then μ = K + Σ(x − K)/m and
    /// σ² = Σ(x − K)²/m − (μ − K)². When K lies far from μ for some channel ((μ − K)² &gt; <see cref="MaxShiftRatio"/>·σ²,
    /// where that subtraction would lose digits), the variance is computed again about μ itself, in a second read, as
    /// libtorch computes it.
    /// </summary>
    public static (double[] Mean, double[] Variance) Moments(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        bool channelsLast = IsChannelsLast(x);
        var xc = Memory(x, channelsLast);
        var s = Shape.Of(x, channelsLast);
        using var rented = new Rented();
        double[] shift = rented.Take<double>(s.C), sums = rented.Take<double>(s.C), squares = rented.Take<double>(s.C);
        nint px = Address(xc);
        Shift(px, s, shift);
        ReduceAt(s, px, px, shift, shift, sums, squares);

        double m = s.N * s.L;
        var mean = new double[s.C];
        var variance = new double[s.C];
        bool again = false;
        for (long c = 0; c < s.C; c++)
        {
            double offset = sums[c] / m;
            mean[c] = shift[c] + offset;
            variance[c] = Math.Max(0, (squares[c] / m) - (offset * offset));
            again |= offset * offset > MaxShiftRatio * variance[c];
        }

        if (again)
        {
            ReduceAt(s, px, px, mean, mean, null, squares);
            for (long c = 0; c < s.C; c++) variance[c] = squares[c] / m;
        }

        return (mean, variance);
    }

    /// <summary>
    /// The shift K of <see cref="Moments"/> per channel: the mean of the channel's first value in
    /// <see cref="ShiftSamples"/> samples spread evenly over the batch (rows, for channels-last input), a few values of
    /// the same distribution, so usually within a standard deviation of μ.
    /// </summary>
    private static void Shift(nint px, Shape s, double[] shift)
    {
        long samples = Math.Min(s.N, ShiftSamples);
        for (long c = 0; c < s.C; c++)
        {
            double total = 0;
            for (long k = 0; k < samples; k++)
            {
                long n = k * s.N / samples;
                long at = ((n * s.C) + c) * s.L;
                total += s.Single ? ((float*)px)[at] : ((double*)px)[at];
            }

            shift[c] = total / samples;
        }
    }

    /// <summary>How many samples' (or rows') first values make the shift K of <see cref="Moments"/>.</summary>
    private const long ShiftSamples = 8;

    /// <summary>Largest (μ − K)²/σ² for which <see cref="Moments"/> keeps its one-read variance.</summary>
    private const double MaxShiftRatio = 8;

    /// <summary>
    /// Whether <paramref name="t"/> is a 4-d tensor stored channels-last: N×C×H×W laid out as a contiguous N×H×W×C,
    /// the layout libtorch's CPU convolutions produce from channels-last input. (A contiguous tensor is walked as it is,
    /// even when its layout is both, as with one channel.)
    /// </summary>
    internal static bool IsChannelsLast(Tensor t)
    {
        if (t.dim() != 4 || t.is_contiguous())
            return false;
        long[] size = t.shape, stride = t.stride();
        long c = size[1], w = size[3];
        return stride[1] == 1 && stride[3] == c && stride[2] == w * c && stride[0] == size[2] * w * c;
    }

    /// <summary>The contiguous memory a kernel walks: the N×H×W×C view of a channels-last tensor, else the tensor made contiguous.</summary>
    private static Tensor Memory(Tensor t, bool channelsLast) => channelsLast ? t.permute(0, 2, 3, 1).contiguous() : t.contiguous();

    /// <summary>
    /// The address of a contiguous CPU tensor's first value: native memory owned by the tensor, which does not move
    /// while the tensor lives. TorchSharp's byte span of a whole tensor stops at 2 GB, so a larger tensor is read
    /// through a one-value view of its start.
    /// </summary>
    internal static nint Address(Tensor t)
    {
        if (t.numel() * t.element_size() <= int.MaxValue)
        {
            fixed (byte* p = t.bytes)
                return (nint)p;
        }

        using var flat = t.view(-1);
        using var first = flat.narrow(0, 0, 1);
        fixed (byte* p = first.bytes)
            return (nint)p;
    }

    /// <summary>Runs <paramref name="body"/>(part) for part = 0 … parts − 1, in parallel when parts &gt; 1.</summary>
    private static void ForParts(int parts, Action<int> body)
    {
        if (parts <= 1)
            body(0);
        else
            Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, body);
    }

    /// <summary>
    /// Scratch arrays of one kernel call, rented from the shared array pools (cleared, possibly longer than asked for)
    /// and returned together on dispose, so a training step allocates no per-call managed arrays here.
    /// </summary>
    internal sealed class Rented : IDisposable
    {
        private readonly List<Action> _returns = new();

        public TElement[] Take<TElement>(long length)
        {
            var array = System.Buffers.ArrayPool<TElement>.Shared.Rent((int)length);
            Array.Clear(array, 0, (int)length);
            _returns.Add(() => System.Buffers.ArrayPool<TElement>.Shared.Return(array));
            return array;
        }

        public void Dispose()
        {
            foreach (var giveBack in _returns) giveBack();
            _returns.Clear();
        }
    }

    /// <summary>The N×C×L view of an input (N·H·W × C × 1 when channels-last), with the loop direction and thread count chosen for it.</summary>
    private readonly struct Shape(long n, long c, long l, int threads, bool single)
    {
        public readonly long N = n, C = c, L = l;
        public readonly int Threads = threads;

        /// <summary>Whether the values are float32 (else float64).</summary>
        public readonly bool Single = single;

        public long Row => C * L;

        /// <summary>Whether loops run along L (per channel and sample) rather than along rows of C·L values.</summary>
        public bool AlongL(int vectorLength) => L >= 2 * vectorLength;

        public static Shape Of(Tensor t, bool channelsLast)
        {
            long[] dims = t.shape;
            long c = dims[1], count = dims.Aggregate(1L, (p, d) => p * d);
            long n = channelsLast ? dims[0] * dims[2] * dims[3] : dims[0];
            long l = n * c == 0 ? 0 : count / (n * c);
            int threads = count < ParallelGrain ? 1 : Math.Max(1, torch.get_num_threads());
            return new Shape(n, c, l, threads, t.dtype == ScalarType.Float32);
        }
    }

    /// <summary>Splits [0, count) into <paramref name="parts"/> near-equal ranges; returns range <paramref name="part"/>.</summary>
    private static (long Start, long End) Range(long count, int parts, int part) =>
        (count * part / parts, count * (part + 1) / parts);

    private static class Reducer<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        public static void Run(Shape s, nint pu, nint pv, double[]? cu, double[]? cv, double[]? sumU, double[]? sumCross)
        {
            var sums = new Sums(sumU, sumCross);
            if (s.AlongL(Vector<T>.Count))
            {
                int parts = (int)Math.Min(s.Threads, s.C);
                ForParts(parts, part =>
                {
                    var (c0, c1) = Range(s.C, parts, part);
                    for (long c = c0; c < c1; c++)
                        Channel(s, (T*)pu, (T*)pv, c, T.CreateTruncating(cu?[c] ?? 0), T.CreateTruncating(cv?[c] ?? 0), sums);
                });
                return;
            }

            using var rented = new Rented();
            var perPosition = new Sums(sumU is null ? null : rented.Take<double>(s.Row), sumCross is null ? null : rented.Take<double>(s.Row));
            T[] centreU = PerPosition(cu, s, rented), centreV = PerPosition(cv, s, rented);
            if (s.Row <= NarrowRow && s.N >= 2 * RowChunk)
                ChunksOfRows(s, pu, pv, centreU, centreV, perPosition, rented);
            else
                RangesOfPositions(s, pu, pv, centreU, centreV, perPosition);
            perPosition.FoldInto(sums, s.C, s.L);
        }

        /// <summary>Wide rows (1d layers): each thread owns a range of row positions (whole vectors), so no partial sums are merged.</summary>
        private static void RangesOfPositions(Shape s, nint pu, nint pv, T[] centreU, T[] centreV, Sums perPosition)
        {
            int w = Vector<T>.Count;
            long vectors = s.Row / w;
            int parts = (int)Math.Max(1, Math.Min(s.Threads, vectors));
            ForParts(parts, part =>
            {
                var (v0, v1) = Range(vectors, parts, part);
                long end = part == parts - 1 ? s.Row : v1 * w;
                Columns(s, (T*)pu, (T*)pv, centreU, centreV, v0 * w, end, 0, s.N, perPosition, 0);
            });
        }

        /// <summary>
        /// Narrow rows in large numbers (channels-last 2d layers: N·H·W rows of C values): the rows are cut into chunks of
        /// <see cref="RowChunk"/>, each summed over the whole row into its own partial sums, and the partials are added in
        /// chunk order, so the result does not depend on how many threads share the chunks.
        /// </summary>
        private static void ChunksOfRows(Shape s, nint pu, nint pv, T[] centreU, T[] centreV, Sums perPosition, Rented rented)
        {
            long chunks = (s.N + RowChunk - 1) / RowChunk;
            var partial = new Sums(perPosition.U is null ? null : rented.Take<double>(chunks * s.Row), perPosition.Cross is null ? null : rented.Take<double>(chunks * s.Row));
            int parts = (int)Math.Min(s.Threads, chunks);
            ForParts(parts, part =>
            {
                var (k0, k1) = Range(chunks, parts, part);
                for (long k = k0; k < k1; k++)
                    Columns(s, (T*)pu, (T*)pv, centreU, centreV, 0, s.Row, k * RowChunk, Math.Min(s.N, (k + 1) * RowChunk), partial, k * s.Row);
            });
            for (long k = 0; k < chunks; k++)
            {
                for (long j = 0; j < s.Row; j++)
                {
                    if (partial.U is not null) perPosition.U![j] += partial.U[(k * s.Row) + j];
                    if (partial.Cross is not null) perPosition.Cross![j] += partial.Cross[(k * s.Row) + j];
                }
            }
        }

        /// <summary>One channel's sums over its N runs of L values (u, and v when the cross sum is wanted, read once).</summary>
        private static void Channel(Shape s, T* u, T* v, long c, T centreU, T centreV, Sums into)
        {
            double total = 0, cross = 0;
            for (long n = 0; n < s.N; n++)
            {
                long offset = ((n * s.C) + c) * s.L;
                var (t, x) = RunSums(u + offset, v + offset, s.L, centreU, centreV, into.Cross is not null);
                total += t;
                cross += x;
            }

            if (into.U is not null) into.U[c] = total;
            if (into.Cross is not null) into.Cross[c] = cross;
        }

        /// <summary>Σ(u − cu) and, when <paramref name="withCross"/>, Σ(u − cu)·(v − cv) over one run of values.</summary>
        private static (double Sum, double Cross) RunSums(T* u, T* v, long length, T centreU, T centreV, bool withCross)
        {
            Vector<T> sum0 = Vector<T>.Zero, sum1 = Vector<T>.Zero, cross0 = Vector<T>.Zero, cross1 = Vector<T>.Zero;
            var cu = new Vector<T>(centreU);
            var cv = new Vector<T>(centreV);
            int w = Vector<T>.Count;
            long i = 0;
            for (; i + (2 * w) <= length; i += 2 * w)
            {
                Vector<T> u0 = Vector.Load(u + i) - cu, u1 = Vector.Load(u + i + w) - cu;
                sum0 += u0;
                sum1 += u1;
                if (withCross)
                {
                    cross0 += u0 * (Vector.Load(v + i) - cv);
                    cross1 += u1 * (Vector.Load(v + i + w) - cv);
                }
            }

            T total = Vector.Sum(sum0 + sum1), cross = Vector.Sum(cross0 + cross1);
            for (; i < length; i++)
            {
                T centred = u[i] - centreU;
                total += centred;
                if (withCross) cross += centred * (v[i] - centreV);
            }

            return (double.CreateTruncating(total), double.CreateTruncating(cross));
        }

        /// <summary>
        /// Per row position j in [start, end): Σ over rows [firstRow, endRow) of u − cu and of (u − cu)·(v − cv), added
        /// into <paramref name="into"/> at <paramref name="intoOffset"/> + j. Blocks of <see cref="RowBlock"/> rows are
        /// summed in registers one vector of positions at a time (vectorized across positions), added into T
        /// accumulators per position, and those into the doubles every <see cref="RowsPerFlush"/> rows.
        /// </summary>
        private static void Columns(Shape s, T* u, T* v, T[] centreU, T[] centreV, long start, long end, long firstRow, long endRow, Sums into, long intoOffset)
        {
            int width = (int)(end - start);
            using var rented = new Rented();
            T[] accU = rented.Take<T>(width), accX = rented.Take<T>(width);
            fixed (T* au = accU, ax = accX, pcu = centreU, pcv = centreV)
            {
                for (long n0 = firstRow; n0 < endRow; n0 += RowsPerFlush)
                {
                    long n1 = Math.Min(endRow, n0 + RowsPerFlush);
                    for (long n = n0; n < n1; n += RowBlock)
                    {
                        long offset = (n * s.Row) + start;
                        AddBlock(u + offset, v + offset, s.Row, (int)Math.Min(RowBlock, n1 - n), width, pcu + start, pcv + start, au, ax, into.Cross is not null);
                    }

                    into.Flush(intoOffset + start, width, accU, accX);
                }
            }
        }

        /// <summary>
        /// Adds the sums of a block of <paramref name="rows"/> rows (positions [0, width) of each, rows
        /// <paramref name="row"/> values apart) into per-position T accumulators (see <see cref="Columns"/>).
        /// </summary>
        private static void AddBlock(T* u, T* v, long row, int rows, int width, T* centreU, T* centreV, T* accU, T* accX, bool withCross)
        {
            int w = Vector<T>.Count, j = 0;
            for (; j + w <= width; j += w)
            {
                Vector<T> cu = Vector.Load(centreU + j), sum = Vector<T>.Zero;
                if (withCross)
                {
                    Vector<T> cv = Vector.Load(centreV + j), cross = Vector<T>.Zero;
                    for (int r = 0; r < rows; r++)
                    {
                        var centred = Vector.Load(u + (r * row) + j) - cu;
                        sum += centred;
                        cross += centred * (Vector.Load(v + (r * row) + j) - cv);
                    }

                    Vector.Store(Vector.Load(accX + j) + cross, accX + j);
                }
                else
                {
                    for (int r = 0; r < rows; r++)
                        sum += Vector.Load(u + (r * row) + j) - cu;
                }

                Vector.Store(Vector.Load(accU + j) + sum, accU + j);
            }

            for (; j < width; j++)
                for (int r = 0; r < rows; r++)
                {
                    T centred = u[(r * row) + j] - centreU[j];
                    accU[j] += centred;
                    if (withCross) accX[j] += centred * (v[(r * row) + j] - centreV[j]);
                }
        }

        /// <summary>A per-channel value repeated over the L positions of its channel in a row (zeros when null).</summary>
        public static T[] PerPosition(double[]? perChannel, Shape s, Rented rented)
        {
            var row = rented.Take<T>(s.Row);
            if (perChannel is not null)
                for (long c = 0; c < s.C; c++)
                    row.AsSpan((int)(c * s.L), (int)s.L).Fill(T.CreateTruncating(perChannel[c]));
            return row;
        }

        /// <summary>The wanted sums (null = not wanted), per channel or per row position.</summary>
        private sealed class Sums(double[]? u, double[]? cross)
        {
            public readonly double[]? U = u, Cross = cross;

            /// <summary>Adds T accumulators for positions [start, start + length) into these sums and clears them.</summary>
            public void Flush(long start, int width, T[] accU, T[] accX)
            {
                for (int k = 0; k < width; k++)
                {
                    if (U is not null) U[start + k] += double.CreateTruncating(accU[k]);
                    if (Cross is not null) Cross[start + k] += double.CreateTruncating(accX[k]);
                }

                Array.Clear(accU, 0, width);
                Array.Clear(accX, 0, width);
            }

            private static double Sum(double[] values, long start, long length)
            {
                double total = 0;
                for (long k = start; k < start + length; k++) total += values[k];
                return total;
            }

            /// <summary>Adds per-position sums into per-channel ones (positions c·L … c·L + L − 1 belong to channel c).</summary>
            public void FoldInto(Sums channels, long count, long l)
            {
                for (long c = 0; c < count; c++)
                {
                    if (U is not null) channels.U![c] = Sum(U, c * l, l);
                    if (Cross is not null) channels.Cross![c] = Sum(Cross, c * l, l);
                }
            }
        }
    }

    private static class Combiner<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        public static void Run(Shape s, nint pu, double[]? a, nint px, double[] b, double[] d, nint po)
        {
            if (s.AlongL(Vector<T>.Count))
            {
                long runs = s.N * s.C;
                int parts = (int)Math.Min(s.Threads, runs);
                ForParts(parts, part =>
                {
                    var (r0, r1) = Range(runs, parts, part);
                    for (long r = r0; r < r1; r++)
                    {
                        long c = r % s.C, offset = r * s.L;
                        T ac = T.CreateTruncating(a?[c] ?? 0), bc = T.CreateTruncating(b[c]), dc = T.CreateTruncating(d[c]);
                        AlongL((T*)pu + (pu == 0 ? 0 : offset), (T*)px + offset, (T*)po + offset, s.L, ac, bc, dc);
                    }
                });
                return;
            }

            using var rented = new Rented();
            T[] ar = Reducer<T>.PerPosition(a, s, rented), br = Reducer<T>.PerPosition(b, s, rented), dr = Reducer<T>.PerPosition(d, s, rented);
            int rowParts = (int)Math.Min(s.Threads, s.N);
            ForParts(rowParts, part =>
            {
                var (n0, n1) = Range(s.N, rowParts, part);
                for (long n = n0; n < n1; n++)
                {
                    long offset = n * s.Row;
                    Row((T*)pu + (pu == 0 ? 0 : offset), ar, (T*)px + offset, br, dr, (T*)po + offset, (int)s.Row);
                }
            });
        }

        /// <summary>o = a·u + b·x + d over one run with scalar coefficients (u null: b·x + d).</summary>
        private static void AlongL(T* u, T* x, T* o, long length, T a, T b, T d)
        {
            var va = new Vector<T>(a);
            var vb = new Vector<T>(b);
            var vd = new Vector<T>(d);
            int w = Vector<T>.Count;
            long i = 0;
            if (u == null)
            {
                for (; i + w <= length; i += w)
                    Vector.Store((Vector.Load(x + i) * vb) + vd, o + i);
                for (; i < length; i++) o[i] = (x[i] * b) + d;
                return;
            }

            for (; i + w <= length; i += w)
                Vector.Store((Vector.Load(u + i) * va) + (Vector.Load(x + i) * vb) + vd, o + i);
            for (; i < length; i++) o[i] = (u[i] * a) + (x[i] * b) + d;
        }

        /// <summary>o = a·u + b·x + d over one row with per-position coefficients (u null: b·x + d).</summary>
        private static void Row(T* u, T[] a, T* x, T[] b, T[] d, T* o, int length)
        {
            int w = Vector<T>.Count, j = 0;
            fixed (T* pa = a, pb = b, pd = d)
            {
                for (; j + w <= length; j += w)
                {
                    var value = (Vector.Load(x + j) * Vector.Load(pb + j)) + Vector.Load(pd + j);
                    if (u != null) value += Vector.Load(u + j) * Vector.Load(pa + j);
                    Vector.Store(value, o + j);
                }

                for (; j < length; j++)
                {
                    T value = (x[j] * pb[j]) + pd[j];
                    o[j] = u == null ? value : value + (u[j] * pa[j]);
                }
            }
        }
    }
}

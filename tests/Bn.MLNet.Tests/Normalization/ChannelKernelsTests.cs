using Bn.MLNet.Normalization;
using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Tests.Normalization;

/// <summary>
/// The BatchNorm kernels against float64 references built from libtorch operations, for both loop directions (along
/// the spatial axis, and along rows of C·L values with L = 1 and L &gt; 1), vector tails, more rows than one flush
/// group, float32 and float64, non-contiguous and channels-last input, the one-read variance's fallback, and 1 against
/// 2 threads.
/// </summary>
[Collection(TorchGlobalStateCollection.Name)]
public class ChannelKernelsTests
{
    public static TheoryData<string, ScalarType> Shapes()
    {
        var data = new TheoryData<string, ScalarType>();
        foreach (var shape in new[] { "3x4x5x5", "6x3x2x2", "70x13", "130x9", "5x3x7" })
        foreach (var dtype in new[] { ScalarType.Float32, ScalarType.Float64 })
            data.Add(shape, dtype);
        return data;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void ReduceMatchesTheFloat64Reference(string shapeText, ScalarType dtype)
    {
        using var scope = torch.NewDisposeScope();
        var (u, v) = Inputs(shapeText, dtype, 3);
        long c = u.shape[1];
        double[] cu = Enumerable.Range(0, (int)c).Select(i => 40.0 + i).ToArray();
        double[] cv = Enumerable.Range(0, (int)c).Select(i => 55.0 - i).ToArray();
        var sum = new double[c];
        var cross = new double[c];

        ChannelKernels.Reduce(u, v, cu, cv, sum, cross);

        var centredU = u.to(ScalarType.Float64) - PerChannel(cu, u);
        var centredV = v.to(ScalarType.Float64) - PerChannel(cv, u);
        AssertClose(ReferenceSum(centredU), sum, Tolerance(dtype), "Σ(u − cu)");
        AssertClose(ReferenceSum(centredU * centredV), cross, Tolerance(dtype), "Σ(u − cu)(v − cv)");
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void CombineMatchesTheFloat64Reference(string shapeText, ScalarType dtype)
    {
        using var scope = torch.NewDisposeScope();
        var (u, x) = Inputs(shapeText, dtype, 5);
        long c = u.shape[1];
        double[] a = Enumerable.Range(0, (int)c).Select(i => 0.5 + (0.1 * i)).ToArray();
        double[] b = Enumerable.Range(0, (int)c).Select(i => -1.0 + (0.05 * i)).ToArray();
        double[] d = Enumerable.Range(0, (int)c).Select(i => 3.0 - i).ToArray();

        var both = ChannelKernels.Combine(u, a, x, b, d);
        var affine = ChannelKernels.Combine(null, null, x, b, d);

        Assert.Equal(x.shape, both.shape);
        Assert.Equal(dtype, both.dtype);
        var x64 = x.to(ScalarType.Float64);
        var expectedAffine = (x64 * PerChannel(b, x)) + PerChannel(d, x);
        var expectedBoth = (u.to(ScalarType.Float64) * PerChannel(a, x)) + expectedAffine;
        TestUtil.AssertClose(both.to(ScalarType.Float64), expectedBoth, Tolerance(dtype), "a·u + b·x + d");
        TestUtil.AssertClose(affine.to(ScalarType.Float64), expectedAffine, Tolerance(dtype), "b·x + d");
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void MomentsMatchTheFloat64Reference(string shapeText, ScalarType dtype)
    {
        using var scope = torch.NewDisposeScope();
        var (x, _) = Inputs(shapeText, dtype, 7);

        var (mean, variance) = ChannelKernels.Moments(x);

        var (refMean, refVar) = ReferenceMoments(x);
        AssertClose(refMean, mean, Tolerance(dtype), "mean");
        AssertClose(refVar, variance, Tolerance(dtype), "biased variance");
    }

    [Fact]
    public void MomentsStayAccurateWhenTheFirstSamplesAreFarFromTheMean()
    {
        // The shift K is the mean of each channel's first value in the first 8 samples; here those 8 values are
        // outliers (1e4 above the rest), so (μ − K)² is about 1,300 variances and the one-read variance would lose
        // about three digits: the second read about μ must be taken.
        using var scope = torch.NewDisposeScope();
        var gen = new torch.Generator(11);
        var x = torch.randn(new long[] { 40, 3, 16, 16 }, generator: gen) + 1000;
        using (torch.no_grad())
            x.narrow(0, 0, 8).select(2, 0).select(2, 0).fill_(1000 + 1e4);

        var (mean, variance) = ChannelKernels.Moments(x);

        var (refMean, refVar) = ReferenceMoments(x);
        AssertClose(refMean, mean, 1e-6, "mean");
        AssertClose(refVar, variance, 1e-5, "biased variance");
    }

    [Fact]
    public void NonContiguousInputGivesTheSameResultsAsItsContiguousCopy()
    {
        using var scope = torch.NewDisposeScope();
        var gen = new torch.Generator(5);
        var x = torch.randn(new long[] { 6, 5, 4 }, generator: gen).transpose(1, 2);   // shape 6×4×5, not contiguous
        Assert.False(x.is_contiguous());
        var copy = x.contiguous();

        var (mean, variance) = ChannelKernels.Moments(x);
        var (copyMean, copyVariance) = ChannelKernels.Moments(copy);
        double[] b = { 1, 2, 3, 4 }, d = { -1, 0, 1, 2 };

        Assert.Equal(copyMean, mean);
        Assert.Equal(copyVariance, variance);
        Assert.True(ChannelKernels.Combine(null, null, x, b, d).equal(ChannelKernels.Combine(null, null, copy, b, d)).all().item<bool>());
    }

    [Theory]
    [InlineData("3x4x5x5", false)]
    [InlineData("40x8x16x16", false)]
    [InlineData("40x8x16x16", true)]
    public void ChannelsLastInputIsWalkedInPlaceAndKeepsItsLayout(string shapeText, bool mixedLayouts)
    {
        using var scope = torch.NewDisposeScope();
        var (u, x) = Inputs(shapeText, ScalarType.Float32, 13);
        long c = u.shape[1];
        double[] a = Enumerable.Range(0, (int)c).Select(i => 0.5 + (0.01 * i)).ToArray();
        double[] centre = Enumerable.Range(0, (int)c).Select(i => 50.0 + i).ToArray();
        Tensor xLast = ChannelsLast(x), uLast = mixedLayouts ? u : ChannelsLast(u);
        Assert.True(ChannelKernels.IsChannelsLast(xLast));
        Assert.False(ChannelKernels.IsChannelsLast(x));

        var expected = Run(u, x, a, centre);
        var sum = new double[c];
        var cross = new double[c];
        ChannelKernels.Reduce(uLast, xLast, null, centre, sum, cross);
        var (mean, variance) = ChannelKernels.Moments(xLast);
        var (expectedMean, expectedVariance) = ChannelKernels.Moments(x);
        Tensor combined = ChannelKernels.Combine(uLast, a, xLast, a, centre);

        AssertClose(expected.Sum, sum, 2e-5, "Σu");
        AssertClose(expected.Cross, cross, 2e-5, "Σu·(x − c)");
        AssertClose(expectedMean, mean, 1e-6, "mean");
        AssertClose(expectedVariance, variance, 1e-5, "biased variance");
        Assert.True(ChannelKernels.IsChannelsLast(combined), "the output keeps the channels-last layout");
        Assert.Equal(x.shape, combined.shape);
        Assert.True(combined.allclose(expected.Combined, rtol: 1e-6, atol: 1e-5));
    }

    [Theory]
    [InlineData("40x8x16x16")]
    [InlineData("300x200")]
    [InlineData("300x20x3x3")]
    [InlineData("40x8x16x16/cl")]   // channels-last: 10,240 rows of 8 values, reduced in chunks of rows
    public void TwoThreadsGiveExactlyTheOneThreadResults(string shapeText)
    {
        using var scope = torch.NewDisposeScope();
        var (u, x) = Inputs(shapeText.Split('/')[0], ScalarType.Float32, 9);
        if (shapeText.EndsWith("/cl"))
        {
            (u, x) = (ChannelsLast(u), ChannelsLast(x));
            Assert.True(ChannelKernels.IsChannelsLast(u));
        }

        Assert.True(u.numel() >= 32768, "the shape must be large enough for the parallel path");
        long c = u.shape[1];
        double[] a = Enumerable.Range(0, (int)c).Select(i => 0.5 + (0.01 * i)).ToArray();
        double[] centre = Enumerable.Range(0, (int)c).Select(i => 50.0 + i).ToArray();

        int previous = torch.get_num_threads();
        try
        {
            torch.set_num_threads(1);
            var one = Run(u, x, a, centre);
            torch.set_num_threads(2);
            var two = Run(u, x, a, centre);

            Assert.Equal(one.Sum, two.Sum);
            Assert.Equal(one.Cross, two.Cross);
            Assert.Equal(one.Mean, two.Mean);
            Assert.Equal(one.Variance, two.Variance);
            Assert.True(one.Combined.equal(two.Combined).all().item<bool>());
            var (refMean, refVar) = ReferenceMoments(u);
            AssertClose(refMean, two.Mean, 1e-5, "mean");
            AssertClose(refVar, two.Variance, 1e-5, "biased variance");
        }
        finally
        {
            torch.set_num_threads(previous);
        }
    }

    [Fact]
    public void AddressOfATensorOver2GBIsItsFirstValue()
    {
        // torch.empty does not touch its pages: only the two written here are ever mapped.
        using var scope = torch.NewDisposeScope();
        long length = (long)int.MaxValue + 64;
        var big = torch.empty(new long[] { length }, ScalarType.Byte);
        big.narrow(0, 0, 1).fill_(123);
        big.narrow(0, length - 1, 1).fill_(45);

        nint address = ChannelKernels.Address(big);

        Assert.Equal(123, System.Runtime.InteropServices.Marshal.ReadByte(address));
        Assert.Equal(45, System.Runtime.InteropServices.Marshal.ReadByte(address + (nint)(length - 1)));
        Assert.Equal(ChannelKernels.Address(big.narrow(0, 0, 16)), address);
    }

    private static (double[] Sum, double[] Cross, double[] Mean, double[] Variance, Tensor Combined) Run(Tensor u, Tensor x, double[] a, double[] centre)
    {
        var sum = new double[a.Length];
        var cross = new double[a.Length];
        ChannelKernels.Reduce(u, x, null, centre, sum, cross);
        var (mean, variance) = ChannelKernels.Moments(u);
        return (sum, cross, mean, variance, ChannelKernels.Combine(u, a, x, a, centre));
    }

    /// <summary>The same values stored N×H×W×C, as a convolution on channels-last input returns them.</summary>
    private static Tensor ChannelsLast(Tensor t) => t.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);

    private static (Tensor U, Tensor V) Inputs(string shapeText, ScalarType dtype, int seed)
    {
        long[] shape = shapeText.Split('x').Select(long.Parse).ToArray();
        var gen = new torch.Generator((ulong)seed);
        return ((torch.randn(shape, dtype, generator: gen) * 20) + 50, (torch.randn(shape, dtype, generator: gen) * 5) + 40);
    }

    /// <summary>A per-channel float64 tensor shaped [1, C, 1, …] to broadcast over <paramref name="like"/>.</summary>
    private static Tensor PerChannel(double[] values, Tensor like) =>
        torch.tensor(values, ScalarType.Float64).view(ChannelMath.BroadcastShape(like));

    private static double[] ReferenceSum(Tensor t) => ChannelMath.Read(t.sum(TensorPath.ReduceDims(t.dim())).contiguous());

    private static (double[] Mean, double[] Variance) ReferenceMoments(Tensor x)
    {
        var x64 = x.to(ScalarType.Float64);
        var dims = TensorPath.ReduceDims(x.dim());
        var mean = x64.mean(dims, keepdim: true);
        var variance = (x64 - mean).square().mean(dims);
        return (ChannelMath.Read(mean.reshape(-1).contiguous()), ChannelMath.Read(variance.contiguous()));
    }

    private static double Tolerance(ScalarType dtype) => dtype == ScalarType.Float32 ? 2e-5 : 1e-11;

    private static void AssertClose(double[] expected, double[] actual, double relTol, string what)
    {
        double scale = Math.Max(1.0, expected.Max(Math.Abs));
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= relTol * scale,
                $"{what}[{i}]: expected {expected[i]:R}, got {actual[i]:R} (tolerance {relTol} relative to {scale:G4})");
    }
}

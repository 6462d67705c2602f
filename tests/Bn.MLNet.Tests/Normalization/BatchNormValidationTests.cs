using Bn.MLNet.Normalization;
using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Tests.Normalization;

/// <summary>Bad input raises ArgumentException whose message names the problem.</summary>
public class BatchNormValidationTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(-3)]
    public void NumFeaturesBelowOne(long n)
    {
        var e = Assert.Throws<ArgumentException>(() => new Bn.MLNet.Normalization.BatchNorm2d(n));
        Assert.Contains("numFeatures", e.Message);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(-1e-5)]
    [InlineData(double.NaN)]
    public void EpsNotPositive(double eps)
    {
        var e = Assert.Throws<ArgumentException>(() => new Bn.MLNet.Normalization.BatchNorm1d(3, eps: eps));
        Assert.Contains("eps", e.Message);
    }

    [Theory]
    [InlineData(-0.1)]
    [InlineData(1.5)]
    [InlineData(double.NaN)]
    public void MomentumOutsideUnitInterval(double momentum)
    {
        var e = Assert.Throws<ArgumentException>(() => new Bn.MLNet.Normalization.BatchNorm2d(3, momentum: momentum));
        Assert.Contains("momentum", e.Message);
        Assert.Contains("[0, 1]", e.Message);
    }

    [Fact]
    public void MomentumBoundsAndNullAreAccepted()
    {
        using var a = new Bn.MLNet.Normalization.BatchNorm2d(3, momentum: 0);
        using var b = new Bn.MLNet.Normalization.BatchNorm2d(3, momentum: 1);
        using var c = new Bn.MLNet.Normalization.BatchNorm2d(3, momentum: null);
        Assert.Null(c.Momentum);
    }

    [Fact]
    public void WrongRank2d()
    {
        using var bn = new Bn.MLNet.Normalization.BatchNorm2d(3);
        using var x = torch.randn(4, 3, 5);
        var e = Assert.Throws<ArgumentException>(() => bn.forward(x));
        Assert.Contains("N×C×H×W", e.Message);
        Assert.Contains("[4, 3, 5]", e.Message);
    }

    [Theory]
    [InlineData(new long[] { 3 })]
    [InlineData(new long[] { 2, 3, 4, 5 })]
    public void WrongRank1d(long[] shape)
    {
        using var bn = new Bn.MLNet.Normalization.BatchNorm1d(3);
        using var x = torch.randn(shape);
        var e = Assert.Throws<ArgumentException>(() => bn.forward(x));
        Assert.Contains("N×C or N×C×L", e.Message);
        Assert.Contains("[" + string.Join(", ", shape) + "]", e.Message);
    }

    [Fact]
    public void ChannelCountMismatch()
    {
        using var bn = new Bn.MLNet.Normalization.BatchNorm2d(3);
        using var x = torch.randn(2, 4, 5, 5);
        var e = Assert.Throws<ArgumentException>(() => bn.forward(x));
        Assert.Contains("3 channels", e.Message);
        Assert.Contains("has 4 channels", e.Message);
    }

    [Fact]
    public void HalfPrecisionAndIntegerInputsAreRefusedNamingTheType()
    {
        using var bn = new Bn.MLNet.Normalization.BatchNorm2d(3);
        using var half = torch.randn(2, 3, 4, 4).to_type(ScalarType.Float16);
        Assert.Contains("float32 or float64 input, got Float16", Assert.Throws<ArgumentException>(() => bn.forward(half)).Message);
        using var ints = torch.ones(2, 3, 4, 4, ScalarType.Int32);
        Assert.Contains("got Int32", Assert.Throws<ArgumentException>(() => bn.forward(ints)).Message);
    }

    [Fact]
    public void SingleValuePerChannelInTraining()
    {
        using var bn1 = new Bn.MLNet.Normalization.BatchNorm1d(3);
        using var row = torch.randn(1, 3);
        var e = Assert.Throws<ArgumentException>(() => bn1.forward(row));
        Assert.Contains("more than one value per channel in training", e.Message);
        Assert.Equal(0L, bn1.NumBatchesTracked!.item<long>()); // nothing was updated

        using var bn2 = new Bn.MLNet.Normalization.BatchNorm2d(3);
        using var pixel = torch.randn(1, 3, 1, 1);
        Assert.Contains("more than one value per channel", Assert.Throws<ArgumentException>(() => bn2.forward(pixel)).Message);

        // in eval mode with running statistics a single row is fine
        bn1.eval();
        using var y = bn1.forward(row);
        Assert.Equal(row.shape, y.shape);
    }
}

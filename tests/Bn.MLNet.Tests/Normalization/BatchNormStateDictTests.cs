using Bn.MLNet.Normalization;
using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Tests.Normalization;

/// <summary>State-dict keys are PyTorch's, and weights move between ours and native both ways under strict loading.</summary>
public class BatchNormStateDictTests
{
    private static readonly string[] Keys = { "weight", "bias", "running_mean", "running_var", "num_batches_tracked" };

    [Fact]
    public void KeysAreExactlyPyTorchsAndMatchNative()
    {
        using var ours = new Bn.MLNet.Normalization.BatchNorm2d(3);
        using var native = nn.BatchNorm2d(3);
        Assert.Equal(Keys, ours.state_dict().Keys.ToArray());
        Assert.Equal(native.state_dict().Keys.OrderBy(k => k), ours.state_dict().Keys.OrderBy(k => k));
        Assert.Equal(new[] { "weight", "bias" }, ours.named_parameters().Select(p => p.name).ToArray());
        Assert.Equal(ScalarType.Int64, ours.state_dict()["num_batches_tracked"].dtype);
        Assert.Empty(ours.NumBatchesTracked!.shape);

        using var noAffine = new Bn.MLNet.Normalization.BatchNorm1d(3, affine: false);
        Assert.Equal(new[] { "running_mean", "running_var", "num_batches_tracked" }, noAffine.state_dict().Keys.ToArray());
        using var noStats = new Bn.MLNet.Normalization.BatchNorm1d(3, trackRunningStats: false);
        Assert.Equal(new[] { "weight", "bias" }, noStats.state_dict().Keys.ToArray());
    }

    [Fact]
    public void OursLoadsIntoNativeAndBackStrict()
    {
        using var scope = torch.NewDisposeScope();
        var gen = new torch.Generator(7);
        using var ours = new Bn.MLNet.Normalization.BatchNorm2d(4);
        for (int i = 0; i < 3; i++)
            ours.forward(torch.randn(new long[] { 5, 4, 3, 3 }, generator: gen) * 10 + 2);
        using (torch.no_grad())
        {
            ours.Gamma!.copy_(torch.rand(4, generator: gen));
            ours.Beta!.copy_(torch.randn(4, generator: gen));
        }

        using var native = nn.BatchNorm2d(4);
        native.load_state_dict(ours.state_dict(), strict: true);
        foreach (var key in Keys)
            Assert.True(native.state_dict()[key].to(ScalarType.Float64).allclose(ours.state_dict()[key].to(ScalarType.Float64), 0, 0), key);
        Assert.Equal(3L, native.num_batches_tracked!.item<long>());

        // eval outputs agree after the transfer
        ours.eval();
        native.eval();
        var x = torch.randn(new long[] { 2, 4, 5, 3 }, generator: gen);
        TestUtil.AssertClose(ours.forward(x), native.forward(x), 2e-5, "eval after transfer");

        // and back: native (changed by training) into a fresh layer of ours
        native.train();
        native.forward(torch.randn(new long[] { 6, 4, 2, 2 }, generator: gen));
        using var back = new Bn.MLNet.Normalization.BatchNorm2d(4);
        back.load_state_dict(native.state_dict(), strict: true);
        foreach (var key in Keys)
            Assert.True(back.state_dict()[key].to(ScalarType.Float64).allclose(native.state_dict()[key].to(ScalarType.Float64), 0, 0), key);
        Assert.Equal(4L, back.NumBatchesTracked!.item<long>());
        Assert.Equal(ScalarType.Int64, back.NumBatchesTracked.dtype);
    }

    [Fact]
    public void OneDimensionalInterchange()
    {
        using var scope = torch.NewDisposeScope();
        using var native = nn.BatchNorm1d(5);
        native.forward(torch.randn(8, 5) * 3 + 1);
        using var ours = new Bn.MLNet.Normalization.BatchNorm1d(5);
        ours.load_state_dict(native.state_dict(), strict: true);
        TestUtil.AssertClose(ours.RunningMean!, native.running_mean!, 0, "running_mean");
        using var native2 = nn.BatchNorm1d(5);
        native2.load_state_dict(ours.state_dict(), strict: true);
        TestUtil.AssertClose(native2.running_var!, native.running_var!, 0, "running_var");
    }

    [Fact]
    public void ToFloat64ConvertsParametersAndBuffersButKeepsCounterInt64()
    {
        using var ours = new Bn.MLNet.Normalization.BatchNorm2d(2);
        ours.to(ScalarType.Float64);
        Assert.Equal(ScalarType.Float64, ours.Gamma!.dtype);
        Assert.Equal(ScalarType.Float64, ours.Beta!.dtype);
        Assert.Equal(ScalarType.Float64, ours.RunningMean!.dtype);
        Assert.Equal(ScalarType.Float64, ours.RunningVar!.dtype);
        Assert.Equal(ScalarType.Int64, ours.NumBatchesTracked!.dtype);
        Assert.Same(ours.Gamma, ours.parameters().First());
    }
}

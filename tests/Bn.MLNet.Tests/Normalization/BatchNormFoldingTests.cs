using Bn.MLNet.Normalization;
using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Tests.Normalization;

/// <summary>The folded layer alone equals layer → BN in evaluation mode (≤ 1e-5 relative).</summary>
public class BatchNormFoldingTests
{
    private static void Randomize(BatchNormBase bn, Tensor trainingInput, torch.Generator gen)
    {
        using var scope = torch.NewDisposeScope();
        for (int i = 0; i < 3; i++) bn.forward(trainingInput * (i + 1) + i);
        using var noGrad = torch.no_grad();
        bn.Gamma!.copy_(torch.rand(bn.NumFeatures, generator: gen) + 0.5);
        bn.Beta!.copy_(torch.randn(bn.NumFeatures, generator: gen));
        bn.eval();
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Conv2dThenBatchNorm2d(bool convBias)
    {
        using var scope = torch.NewDisposeScope();
        var gen = new torch.Generator(99);
        var conv = nn.Conv2d(3, 5, 3, stride: 2, padding: 1, bias: convBias);
        var bn = new Bn.MLNet.Normalization.BatchNorm2d(5);
        using (torch.no_grad()) Randomize(bn, conv.forward(torch.randn(new long[] { 4, 3, 9, 7 }, generator: gen)), gen);
        Assert.True(bn.RunningMean!.abs().max().item<float>() > 0.05);

        var x = torch.randn(new long[] { 2, 3, 11, 9 }, generator: gen);
        var expected = bn.forward(conv.forward(x));
        var folded = BatchNormFolding.Fold(conv, bn);
        Assert.NotNull(folded.bias);
        Assert.Equal(conv.weight!.shape, folded.weight!.shape);
        TestUtil.AssertClose(folded.forward(x), expected, 1e-5, "folded conv");
        // the inputs are not modified
        TestUtil.AssertClose(bn.forward(conv.forward(x)), expected, 0, "original pair unchanged");
    }

    [Fact]
    public void Conv2dThenNativeBatchNorm2d()
    {
        using var scope = torch.NewDisposeScope();
        var gen = new torch.Generator(5);
        var conv = nn.Conv2d(2, 4, 3, bias: false);
        var bn = nn.BatchNorm2d(4);
        bn.forward(conv.forward(torch.randn(new long[] { 3, 2, 8, 8 }, generator: gen) * 4 + 1));
        using (torch.no_grad())
        {
            bn.weight.copy_(torch.rand(4, generator: gen) + 0.5);
            bn.bias!.copy_(torch.randn(4, generator: gen));
        }

        bn.eval();
        var x = torch.randn(new long[] { 2, 2, 6, 5 }, generator: gen);
        TestUtil.AssertClose(BatchNormFolding.Fold(conv, bn).forward(x), bn.forward(conv.forward(x)), 1e-5, "folded conv (native BN)");
    }

    [Fact]
    public void LinearThenBatchNorm1d()
    {
        using var scope = torch.NewDisposeScope();
        var gen = new torch.Generator(3);
        var linear = nn.Linear(6, 4);
        var bn = new Bn.MLNet.Normalization.BatchNorm1d(4);
        using (torch.no_grad()) Randomize(bn, linear.forward(torch.randn(new long[] { 16, 6 }, generator: gen) * 5), gen);
        var x = torch.randn(new long[] { 7, 6 }, generator: gen);
        TestUtil.AssertClose(BatchNormFolding.Fold(linear, bn).forward(x), bn.forward(linear.forward(x)), 1e-5, "folded linear");

        var native = nn.BatchNorm1d(4);
        native.load_state_dict(bn.state_dict());
        native.eval();
        TestUtil.AssertClose(BatchNormFolding.Fold(linear, native).forward(x), bn.forward(linear.forward(x)), 1e-5, "folded linear (native BN)");
    }

    [Fact]
    public void RejectsMismatchAndMissingStatistics()
    {
        using var conv = nn.Conv2d(2, 4, 3);
        using var bn3 = new Bn.MLNet.Normalization.BatchNorm2d(3);
        Assert.Contains("[4]", Assert.Throws<ArgumentException>(() => BatchNormFolding.Fold(conv, bn3)).Message);
        using var noStats = new Bn.MLNet.Normalization.BatchNorm2d(4, trackRunningStats: false);
        Assert.Contains("running statistics", Assert.Throws<ArgumentException>(() => BatchNormFolding.Fold(conv, noStats)).Message);
    }
}

using Bn.MLNet.Normalization;
using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Tests.Normalization;

/// <summary>
/// Central finite differences (float64) against our closed-form backward for L = Σ y·g with a fixed random g,
/// for x, γ and β, in training mode (batch statistics, gradient through μ_B and σ²_B) and in eval mode.
/// </summary>
public class BatchNormGradientCheckTests
{
    [Fact]
    public void SecondBackwardThroughRetainedGraphGivesTheSameGradients()
    {
        using var scope = torch.NewDisposeScope();
        var gen = new torch.Generator(99);
        using var bn = new Bn.MLNet.Normalization.BatchNorm2d(3);
        bn.to(ScalarType.Float64);
        var x = (torch.randn(new long[] { 4, 3, 2, 5 }, ScalarType.Float64, generator: gen) * 2 + 1).requires_grad_(true);
        var g = torch.randn(new long[] { 4, 3, 2, 5 }, ScalarType.Float64, generator: gen);

        var y = bn.forward(x);
        y.backward(new[] { g }, retain_graph: true);
        var first = new[] { x.grad!.clone(), bn.Gamma!.grad!.clone(), bn.Beta!.grad!.clone() };
        x.grad = null;
        bn.zero_grad();
        y.backward(new[] { g });
        var second = new[] { x.grad!, bn.Gamma!.grad!, bn.Beta!.grad! };

        for (int k = 0; k < first.Length; k++)
        {
            TestUtil.AssertClose(second[k], first[k], 1e-15, $"gradient {k} of the second backward");
        }
    }

    [Theory]
    [InlineData(new long[] { 3, 2, 2, 3 }, true)]
    [InlineData(new long[] { 3, 2, 2, 3 }, false)]
    [InlineData(new long[] { 5, 3 }, true)]
    [InlineData(new long[] { 2, 2, 3 }, true)]
    public void BackwardMatchesCentralDifferences(long[] shape, bool training)
    {
        using var scope = torch.NewDisposeScope();
        var gen = new torch.Generator(1234);
        long c = shape[1];
        using BatchNormBase bn = shape.Length == 4 ? new Bn.MLNet.Normalization.BatchNorm2d(c) : new Bn.MLNet.Normalization.BatchNorm1d(c);
        bn.to(ScalarType.Float64);
        using (torch.no_grad())
        {
            bn.Gamma!.copy_(torch.rand(c, ScalarType.Float64, generator: gen) + 0.5);
            bn.Beta!.copy_(torch.randn(c, ScalarType.Float64, generator: gen));
            bn.RunningMean!.copy_(torch.randn(c, ScalarType.Float64, generator: gen));
            bn.RunningVar!.copy_(torch.rand(c, ScalarType.Float64, generator: gen) + 0.5);
        }

        bn.train(training);
        var x = (torch.randn(shape, ScalarType.Float64, generator: gen) * 3 + 1).requires_grad_(true);
        var g = torch.randn(shape, ScalarType.Float64, generator: gen);

        var y = bn.forward(x);
        y.backward(new[] { g });
        var analytic = new[] { x.grad!.clone(), bn.Gamma!.grad!.clone(), bn.Beta!.grad!.clone() };
        var wrt = new Tensor[] { x, bn.Gamma!, bn.Beta! };

        double Loss()
        {
            using var s = torch.NewDisposeScope();
            using var noGrad = torch.no_grad();
            return (bn.forward(x) * g).sum().item<double>();
        }

        TestUtil.AssertMatchesCentralDifferences(Loss, wrt, analytic);
    }
}

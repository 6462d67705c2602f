using Bn.MLNet.Normalization;
using TorchSharp;
using static TorchSharp.torch;
using static Bn.MLNet.Tests.Normalization.TestUtil;

namespace Bn.MLNet.Tests.Normalization;

/// <summary>
/// Batch Renormalization: equal to our Batch Normalization when r = 1 and d = 0; its closed-form backward (r and d
/// constant) against autograd of the same formula with r and d detached and against central differences where r and d
/// are clipped (so locally constant); the schedule; the state dict; the option checks.
/// </summary>
public class BatchRenormTests
{
    private static BatchNormBase Renorm(long[] shape, BatchRenormSchedule schedule, double? momentum = 0.1)
        => shape.Length == 4 ? new BatchRenorm2d(shape[1], momentum: momentum, schedule: schedule) : new BatchRenorm1d(shape[1], momentum: momentum, schedule: schedule);

    private static BatchNormBase Bn(long[] shape, double? momentum = 0.1)
        => shape.Length == 4 ? new Bn.MLNet.Normalization.BatchNorm2d(shape[1], momentum: momentum) : new Bn.MLNet.Normalization.BatchNorm1d(shape[1], momentum: momentum);

    public static TheoryData<string, ScalarType, double?> TrivialCases()
    {
        var data = new TheoryData<string, ScalarType, double?>();
        foreach (var shape in new[] { "4x3x5x7", "5x2x1x1", "16x5", "3x4", "4x3x7" })
        foreach (var dtype in new[] { ScalarType.Float32, ScalarType.Float64 })
            data.Add(shape, dtype, 0.1);
        data.Add("4x3x5x7", ScalarType.Float64, null);
        return data;
    }

    [Theory]
    [MemberData(nameof(TrivialCases))]
    public void EqualsBatchNormWhenRMaxIsOneAndDMaxIsZero(string shapeText, ScalarType dtype, double? momentum)
    {
        EqualsBatchNorm(shapeText, dtype, momentum);
        using (BatchNormFunction.ForceTensorPath())
        {
            EqualsBatchNorm(shapeText, dtype, momentum);
        }
    }

    private static void EqualsBatchNorm(string shapeText, ScalarType dtype, double? momentum)
    {
        using var scope = torch.NewDisposeScope();
        long[] shape = shapeText.Split('x').Select(long.Parse).ToArray();
        long c = shape[1];
        var gen = new torch.Generator(StableSeed(shapeText) + 3);
        double tol = Tolerance(dtype);
        using var renorm = Renorm(shape, new BatchRenormSchedule(rMax: 1, dMax: 0, warmupSteps: 0), momentum);
        using var bn = Bn(shape, momentum);
        renorm.to(dtype);
        bn.to(dtype);
        using (torch.no_grad())
        {
            var g = torch.rand(c, dtype, generator: gen) + 0.5;
            var b = torch.randn(c, dtype, generator: gen);
            renorm.Gamma!.copy_(g);
            bn.Gamma!.copy_(g);
            renorm.Beta!.copy_(b);
            bn.Beta!.copy_(b);
        }

        for (int step = 0; step < 5; step++)
        {
            using var stepScope = torch.NewDisposeScope();
            var x = torch.randn(shape, dtype, generator: gen) * 100 + 50;
            var upstream = torch.randn(shape, dtype, generator: gen);
            CompareForwardBackward(renorm, bn, x, upstream, tol, $"train step {step}");
        }

        AssertClose(renorm.RunningMean!, bn.RunningMean!, tol, "running_mean");
        AssertClose(renorm.RunningVar!, bn.RunningVar!, tol, "running_var");
        Assert.Equal(5L, renorm.NumBatchesTracked!.item<long>());

        renorm.eval();
        bn.eval();
        CompareForwardBackward(renorm, bn, torch.randn(shape, dtype, generator: gen) * 100 + 50, torch.randn(shape, dtype, generator: gen), tol, "eval");
    }

    [Fact]
    public void RunningStatisticsFollowBatchNormWithActiveCorrections()
    {
        using var scope = torch.NewDisposeScope();
        var gen = new torch.Generator(11);
        long[] shape = { 6, 3, 4, 4 };
        using var renorm = Renorm(shape, new BatchRenormSchedule(3, 5, 0));
        using var bn = Bn(shape);
        for (int step = 0; step < 4; step++)
        {
            var x = torch.randn(shape, generator: gen) * 7 + 3;
            renorm.forward(x);
            bn.forward(x);
        }

        AssertClose(renorm.RunningMean!, bn.RunningMean!, 2e-6, "running_mean");
        AssertClose(renorm.RunningVar!, bn.RunningVar!, 2e-6, "running_var");
    }

    [Theory]
    [InlineData(new long[] { 4, 3, 3, 2 }, false)]
    [InlineData(new long[] { 6, 4 }, false)]
    [InlineData(new long[] { 3, 2, 5 }, false)]
    [InlineData(new long[] { 4, 3, 3, 2 }, true)]
    [InlineData(new long[] { 6, 4 }, true)]
    public void BackwardEqualsAutogradOfTheFormulaWithRAndDDetached(long[] shape, bool deviceIndependentPath)
    {
        using IDisposable? path = deviceIndependentPath ? BatchNormFunction.ForceTensorPath() : null;
        using var scope = torch.NewDisposeScope();
        var gen = new torch.Generator(99);
        long c = shape[1];
        const double eps = 1e-5, rMax = 1.6, dMax = 0.4;
        using var renorm = Renorm(shape, new BatchRenormSchedule(rMax, dMax, 0));
        renorm.to(ScalarType.Float64);
        var runningMean = torch.randn(c, ScalarType.Float64, generator: gen);
        var runningVar = torch.rand(c, ScalarType.Float64, generator: gen) * 4 + 0.2;
        var gamma = torch.rand(c, ScalarType.Float64, generator: gen) + 0.5;
        var beta = torch.randn(c, ScalarType.Float64, generator: gen);
        using (torch.no_grad())
        {
            renorm.RunningMean!.copy_(runningMean);
            renorm.RunningVar!.copy_(runningVar);
            renorm.Gamma!.copy_(gamma);
            renorm.Beta!.copy_(beta);
        }

        var x = (torch.randn(shape, ScalarType.Float64, generator: gen) * 2 + 0.5).requires_grad_(true);
        var g = torch.randn(shape, ScalarType.Float64, generator: gen);
        renorm.forward(x).backward(new[] { g });

        // Reference: the paper's formula through TorchSharp's autograd, r and d detached.
        var dims = Enumerable.Range(0, shape.Length).Where(d => d != 1).Select(d => (long)d).ToArray();
        var view = shape.Select((_, i) => i == 1 ? c : 1L).ToArray();
        var xr = x.detach().clone().requires_grad_(true);
        var gr = gamma.clone().requires_grad_(true);
        var br = beta.clone().requires_grad_(true);
        var mu = xr.mean(dims, keepdim: true);
        var sigmaB = ((xr - mu).pow(2).mean(dims, keepdim: true) + eps).sqrt();
        var sigma = (runningVar + eps).sqrt().view(view);
        var r = (sigmaB / sigma).clamp(1 / rMax, rMax).detach();
        var d = ((mu - runningMean.view(view)) / sigma).clamp(-dMax, dMax).detach();
        var yRef = gr.view(view) * ((xr - mu) / sigmaB * r + d) + br.view(view);
        yRef.backward(new[] { g });

        // r and d really are away from their trivial values, some clipped and some not.
        Assert.True((r - 1).abs().min().item<double>() > 1e-3, "every r differs from 1");
        Assert.True(d.abs().min().item<double>() > 1e-3, "every d differs from 0");
        bool anyClipped = ((r - rMax).abs() < 1e-12).logical_or((r - 1 / rMax).abs() < 1e-12).logical_or((d.abs() - dMax).abs() < 1e-12).any().item<bool>();
        bool anyFree = ((r - rMax).abs() > 1e-9).logical_and((r - 1 / rMax).abs() > 1e-9).any().item<bool>();
        Assert.True(anyClipped && anyFree, "the case mixes clipped and unclipped corrections");

        using (torch.no_grad())
        {
            renorm.train(false);
            var yEval = renorm.forward(x.detach());
            renorm.train(true);
            Assert.False(yEval.allclose(yRef.detach()), "training output differs from the inference transform here");
        }

        AssertClose(x.grad!, xr.grad!, 1e-11, "dL/dx");
        AssertClose(renorm.Gamma!.grad!, gr.grad!, 1e-11, "dL/dgamma");
        AssertClose(renorm.Beta!.grad!, br.grad!, 1e-11, "dL/dbeta");
    }

    [Theory]
    [InlineData(new long[] { 3, 2, 2, 3 })]
    [InlineData(new long[] { 5, 3 })]
    public void BackwardMatchesCentralDifferencesWhereRAndDAreClipped(long[] shape)
    {
        using var scope = torch.NewDisposeScope();
        var gen = new torch.Generator(4321);
        long c = shape[1];
        // Momentum 0 keeps the running statistics fixed across the evaluations; with them far from the batch statistics,
        // every r sits at 1/r_max or r_max and every d at ±d_max, so r and d are locally constant and the true derivative
        // of the layer is the one the paper prescribes.
        using var renorm = Renorm(shape, new BatchRenormSchedule(2.0, 0.5, 0), momentum: 0.0);
        renorm.to(ScalarType.Float64);
        using (torch.no_grad())
        {
            renorm.Gamma!.copy_(torch.rand(c, ScalarType.Float64, generator: gen) + 0.5);
            renorm.Beta!.copy_(torch.randn(c, ScalarType.Float64, generator: gen));
            renorm.RunningMean!.copy_(torch.tensor(Enumerable.Range(0, (int)c).Select(i => i % 2 == 0 ? 30.0 : -30.0).ToArray()));
            renorm.RunningVar!.copy_(torch.tensor(Enumerable.Range(0, (int)c).Select(i => i % 2 == 0 ? 400.0 : 1e-4).ToArray()));
        }

        var x = (torch.randn(shape, ScalarType.Float64, generator: gen) * 3 + 1).requires_grad_(true);
        var g = torch.randn(shape, ScalarType.Float64, generator: gen);
        renorm.forward(x).backward(new[] { g });
        var analytic = new[] { x.grad!.clone(), renorm.Gamma!.grad!.clone(), renorm.Beta!.grad!.clone() };
        var wrt = new Tensor[] { x, renorm.Gamma!, renorm.Beta! };

        double Loss()
        {
            using var s = torch.NewDisposeScope();
            using var noGrad = torch.no_grad();
            return (renorm.forward(x) * g).sum().item<double>();
        }

        TestUtil.AssertMatchesCentralDifferences(Loss, wrt, analytic);

        // The corrections were active: the training output is not plain BN's.
        using var bn = Bn(shape, 0.0);
        bn.to(ScalarType.Float64);
        using (torch.no_grad())
        {
            bn.Gamma!.copy_(renorm.Gamma!);
            bn.Beta!.copy_(renorm.Beta!);
            Assert.False(bn.forward(x).allclose(renorm.forward(x), 1e-3, 1e-3));
        }
    }

    private static void CompareForwardBackward(BatchNormBase renorm, BatchNormBase bn, Tensor x, Tensor upstream, double tol, string what)
    {
        renorm.zero_grad();
        bn.zero_grad();
        var xa = x.clone().requires_grad_(true);
        var xb = x.clone().requires_grad_(true);
        var ya = renorm.forward(xa);
        var yb = bn.forward(xb);
        AssertClose(ya, yb, tol, what + " output");
        Assert.Equal(x.dtype, ya.dtype);
        ya.backward(new[] { upstream });
        yb.backward(new[] { upstream });
        AssertClose(xa.grad!, xb.grad!, tol, what + " dL/dx");
        AssertClose(renorm.Gamma!.grad!, bn.Gamma!.grad!, tol, what + " dL/dgamma");
        AssertClose(renorm.Beta!.grad!, bn.Beta!.grad!, tol, what + " dL/dbeta");
    }
}

using Bn.MLNet.Normalization;
using TorchSharp;
using static TorchSharp.torch;
using static Bn.MLNet.Tests.Normalization.TestUtil;

namespace Bn.MLNet.Tests.Normalization;

/// <summary>
/// Ours versus TorchSharp's native torch.nn.BatchNorm1d/2d (libtorch's batch_norm kernel, the one PyTorch uses):
/// training outputs, gradients for x, γ, β, running statistics and counter after 5 steps, evaluation outputs and
/// gradients. Inputs are x·100 + 50 to punish naive variance formulas.
/// </summary>
public class BatchNormNativeEquivalenceTests
{
    public static TheoryData<string, ScalarType, double?, bool, bool> Cases()
    {
        var data = new TheoryData<string, ScalarType, double?, bool, bool>();
        string[] shapes = { "3x1x5x7", "4x3x7x9", "5x2x1x1", "8x1", "16x5", "4x3x7", "2x1x3" };
        foreach (var shape in shapes)
        foreach (var dtype in new[] { ScalarType.Float32, ScalarType.Float64 })
        foreach (var momentum in new double?[] { 0.1, null })
            data.Add(shape, dtype, momentum, true, true);
        // affine off, and no running statistics (batch statistics in eval too)
        data.Add("4x3x7x9", ScalarType.Float32, 0.1, false, true);
        data.Add("4x3x7x9", ScalarType.Float64, 0.1, true, false);
        data.Add("16x5", ScalarType.Float64, 0.1, false, false);
        return data;
    }

    /// <summary>The device-independent path (libtorch operations, what tensors on other devices run), forced on CPU.</summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void DeviceIndependentPathMatchesNativeToo(string shapeText, ScalarType dtype, double? momentum, bool affine, bool track)
    {
        using (BatchNormFunction.ForceTensorPath())
        {
            MatchesNativeOverFiveTrainingStepsAndEval(shapeText, dtype, momentum, affine, track);
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesNativeOverFiveTrainingStepsAndEval(string shapeText, ScalarType dtype, double? momentum, bool affine, bool track)
    {
        using var scope = torch.NewDisposeScope();
        long[] shape = shapeText.Split('x').Select(long.Parse).ToArray();
        long c = shape[1];
        var gen = new torch.Generator(TestUtil.StableSeed(shapeText) + 17);
        double tol = Tolerance(dtype);

        using BatchNormBase ours = shape.Length == 4
            ? new Bn.MLNet.Normalization.BatchNorm2d(c, momentum: momentum, affine: affine, trackRunningStats: track)
            : new Bn.MLNet.Normalization.BatchNorm1d(c, momentum: momentum, affine: affine, trackRunningStats: track);
        using TorchSharp.Modules.BatchNorm native = shape.Length == 4
            ? nn.BatchNorm2d(c, affine: affine, track_running_stats: track)
            : nn.BatchNorm1d(c, affine: affine, track_running_stats: track);
        native.momentum = momentum;
        ours.to(dtype);
        native.to(dtype);

        if (affine)
        {
            using var noGrad = torch.no_grad();
            var g = torch.rand(c, dtype, generator: gen) + 0.5;
            var b = torch.randn(c, dtype, generator: gen);
            ours.Gamma!.copy_(g);
            ours.Beta!.copy_(b);
            native.weight.copy_(g);
            native.bias!.copy_(b);
        }

        for (int step = 0; step < 5; step++)
        {
            using var stepScope = torch.NewDisposeScope();
            var x = torch.randn(shape, dtype, generator: gen) * 100 + 50;
            var upstream = torch.randn(shape, dtype, generator: gen);
            CompareForwardBackward(ours, native, x, upstream, affine, tol, $"train step {step}");
        }

        if (track)
        {
            AssertClose(ours.RunningMean!, native.running_mean!, tol, "running_mean");
            AssertClose(ours.RunningVar!, native.running_var!, tol, "running_var");
            Assert.Equal(ScalarType.Int64, ours.NumBatchesTracked!.dtype);
            Assert.Equal(5L, ours.NumBatchesTracked.item<long>());
            Assert.Equal(native.num_batches_tracked!.to(ScalarType.Int64).item<long>(), ours.NumBatchesTracked.item<long>());
            // the moving averages must have moved away from their initial 0 / 1
            Assert.True(ours.RunningMean!.abs().max().to(ScalarType.Float64).item<double>() > 1.0);
        }
        else
        {
            Assert.Null(ours.RunningMean);
            Assert.Null(ours.NumBatchesTracked);
        }

        ours.eval();
        native.eval();
        var xe = torch.randn(shape, dtype, generator: gen) * 100 + 50;
        var ge = torch.randn(shape, dtype, generator: gen);
        CompareForwardBackward(ours, native, xe, ge, affine, tol, "eval");
        if (track)
            Assert.Equal(5L, ours.NumBatchesTracked!.item<long>());
    }

    private static void CompareForwardBackward(BatchNormBase ours, TorchSharp.Modules.BatchNorm native, Tensor x, Tensor upstream, bool affine, double tol, string what)
    {
        ours.zero_grad();
        native.zero_grad();
        var xa = x.clone().requires_grad_(true);
        var xb = x.clone().requires_grad_(true);
        var ya = ours.forward(xa);
        var yb = native.forward(xb);
        AssertClose(ya, yb, tol, what + " output");
        Assert.Equal(x.dtype, ya.dtype);
        ya.backward(new[] { upstream });
        yb.backward(new[] { upstream });
        AssertClose(xa.grad!, xb.grad!, tol, what + " dL/dx");
        if (affine)
        {
            AssertClose(ours.Gamma!.grad!, native.weight.grad!, tol, what + " dL/dgamma");
            AssertClose(ours.Beta!.grad!, native.bias!.grad!, tol, what + " dL/dbeta");
        }
    }
}

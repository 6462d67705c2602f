using Bn.MLNet.Networks;
using Bn.MLNet.Normalization;
using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Tests.Normalization;

/// <summary>Batch Renormalization's schedule, state dict (Batch Normalization's) and option checks.</summary>
public class BatchRenormScheduleTests
{
    [Fact]
    public void LimitsRelaxLinearlyOverTheWarmupAndThenStay()
    {
        var s = new BatchRenormSchedule(rMax: 3, dMax: 5, warmupSteps: 100);
        Assert.Equal(1.0, s.RMaxAt(0));
        Assert.Equal(0.0, s.DMaxAt(0));
        Assert.Equal(2.0, s.RMaxAt(50), 12);
        Assert.Equal(2.5, s.DMaxAt(50), 12);
        Assert.Equal(3.0, s.RMaxAt(100));
        Assert.Equal(5.0, s.DMaxAt(100));
        Assert.Equal(3.0, s.RMaxAt(10_000));
        Assert.Equal(5.0, s.DMaxAt(10_000));

        var immediate = new BatchRenormSchedule(2, 1, 0);
        Assert.Equal(2.0, immediate.RMaxAt(0));
        Assert.Equal(1.0, immediate.DMaxAt(0));

        var defaults = new BatchRenormSchedule();
        Assert.Equal((3.0, 5.0, 2000L), (defaults.RMax, defaults.DMax, defaults.WarmupSteps));
    }

    [Fact]
    public void LayerCountsItsTrainingStepsButNotEvalOrPopulationPasses()
    {
        using var scope = torch.NewDisposeScope();
        using var layer = new BatchRenorm2d(2, schedule: new BatchRenormSchedule(3, 5, 4));
        Assert.Equal((1.0, 0.0), (layer.CurrentRMax, layer.CurrentDMax));
        var x = torch.randn(3, 2, 2, 2);
        layer.forward(x);
        Assert.Equal((1.5, 1.25), (layer.CurrentRMax, layer.CurrentDMax));
        layer.eval();
        layer.forward(x);
        Assert.Equal(1L, layer.NumBatchesTracked!.item<long>());
        PopulationStatistics.Recompute(layer, new[] { x, x });
        Assert.Equal(1L, layer.NumBatchesTracked!.item<long>());
        layer.train();
        for (int i = 0; i < 5; i++)
            layer.forward(x);
        Assert.Equal((3.0, 5.0), (layer.CurrentRMax, layer.CurrentDMax));
    }

    [Fact]
    public void StateDictEqualsBatchNormsAndLoadsBothWaysStrict()
    {
        using var scope = torch.NewDisposeScope();
        var gen = new torch.Generator(5);
        using var renorm2d = new BatchRenorm2d(4);
        using var bn2d = new Bn.MLNet.Normalization.BatchNorm2d(4);
        using var renorm1d = new BatchRenorm1d(3);
        using var bn1d = new Bn.MLNet.Normalization.BatchNorm1d(3);
        Assert.Equal(bn2d.state_dict().Keys.ToArray(), renorm2d.state_dict().Keys.ToArray());
        Assert.Equal(bn1d.state_dict().Keys.ToArray(), renorm1d.state_dict().Keys.ToArray());
        Assert.Equal(new[] { "weight", "bias", "running_mean", "running_var", "num_batches_tracked" }, renorm2d.state_dict().Keys.ToArray());
        Assert.Equal(new[] { "weight", "bias" }, renorm2d.named_parameters().Select(p => p.name).ToArray());
        Assert.IsAssignableFrom<Bn.MLNet.Normalization.BatchNorm2d>(renorm2d);
        Assert.IsAssignableFrom<Bn.MLNet.Normalization.BatchNorm1d>(renorm1d);

        for (int i = 0; i < 3; i++)
            renorm2d.forward(torch.randn(new long[] { 5, 4, 3, 3 }, generator: gen) * 4 + 2);
        using (torch.no_grad())
            renorm2d.Gamma!.copy_(torch.rand(4, generator: gen) + 0.5);

        bn2d.load_state_dict(renorm2d.state_dict(), strict: true);
        using var native = nn.BatchNorm2d(4);
        native.load_state_dict(renorm2d.state_dict(), strict: true);
        using var back = new BatchRenorm2d(4);
        back.load_state_dict(bn2d.state_dict(), strict: true);
        Assert.Equal(3L, back.NumBatchesTracked!.item<long>());

        // Inference is Batch Normalization with the moving averages.
        renorm2d.eval();
        bn2d.eval();
        native.eval();
        var x = torch.randn(new long[] { 2, 4, 5, 3 }, generator: gen);
        Assert.True(renorm2d.forward(x).eq(bn2d.forward(x)).all().item<bool>(), "eval output equals BatchNorm2d's");
        TestUtil.AssertClose(renorm2d.forward(x), native.forward(x), 2e-5, "eval output against TorchSharp's BatchNorm2d");
    }

    [Theory]
    [InlineData(0.99, 5.0, 10L, "rMax")]
    [InlineData(double.NaN, 5.0, 10L, "rMax")]
    [InlineData(double.PositiveInfinity, 5.0, 10L, "rMax")]
    [InlineData(3.0, -0.1, 10L, "dMax")]
    [InlineData(3.0, double.NaN, 10L, "dMax")]
    [InlineData(3.0, 5.0, -1L, "warmupSteps")]
    public void BadScheduleArgumentsAreNamed(double rMax, double dMax, long warmup, string name)
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new BatchRenormSchedule(rMax, dMax, warmup));
        Assert.Equal(name, ex.ParamName);
        Assert.Contains(name, ex.Message);
    }

    [Theory]
    [InlineData(0.5, 5.0, 10L, "BatchRenormRMax")]
    [InlineData(3.0, -1.0, 10L, "BatchRenormDMax")]
    [InlineData(3.0, 5.0, -5L, "BatchRenormWarmupSteps")]
    public void BadOptionsAreNamedInArchitectureAndPipelineOptions(double rMax, double dMax, long warmup, string name)
    {
        var arch = NetworkArchitecture.Default();
        arch.Normalization = NormalizationKind.BatchRenorm;
        arch.BatchRenormRMax = rMax;
        arch.BatchRenormDMax = dMax;
        arch.BatchRenormWarmupSteps = warmup;
        var ex = Assert.Throws<ArgumentOutOfRangeException>(arch.Validate);
        Assert.Equal(name, ex.ParamName);
        Assert.Contains("NetworkArchitecture." + name, ex.Message);

        var options = new BatchNormCnnOptions
        {
            Normalization = NormalizationKind.BatchRenorm,
            BatchRenormRMax = rMax,
            BatchRenormDMax = dMax,
            BatchRenormWarmupSteps = warmup,
        };
        var ex2 = Assert.Throws<ArgumentOutOfRangeException>(options.Validate);
        Assert.Equal(name, ex2.ParamName);
        Assert.Contains("BatchNormCnnOptions." + name, ex2.Message);
    }

    [Fact]
    public void OptionDefaultsAreTheSchedules()
    {
        var options = new BatchNormCnnOptions { Normalization = NormalizationKind.BatchRenorm };
        var arch = options.Network;
        Assert.Equal(BatchRenormSchedule.DefaultRMax, arch.BatchRenormRMax);
        Assert.Equal(BatchRenormSchedule.DefaultDMax, arch.BatchRenormDMax);
        Assert.Equal(BatchRenormSchedule.DefaultWarmupSteps, arch.BatchRenormWarmupSteps);
        Assert.Equal(new NetworkArchitecture().BatchRenormWarmupSteps, arch.BatchRenormWarmupSteps);
    }
}

using Bn.MLNet.Normalization;
using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Tests.Normalization;

/// <summary>
/// Algorithm 2 steps 8–11: after Recompute, running_mean = E_B[μ_B] and running_var = m/(m−1)·E_B[σ²_B], where
/// the test computes μ_B and σ²_B itself, batch by batch, through a hand-written copy of the network in training mode.
/// </summary>
public class PopulationStatisticsTests
{
    [Fact]
    public void RecomputeEqualsIndependentFormulaAndRestoresModes()
    {
        using var scope = torch.NewDisposeScope();
        var gen = new torch.Generator(42);
        var f64 = ScalarType.Float64;
        var lin1 = nn.Linear(4, 6);
        var bn1 = new Bn.MLNet.Normalization.BatchNorm1d(6, momentum: 0.3);
        var lin2 = nn.Linear(6, 3);
        var bn2 = new Bn.MLNet.Normalization.BatchNorm1d(3);
        var net = nn.Sequential(("lin1", lin1), ("bn1", bn1), ("relu", nn.ReLU()), ("lin2", lin2), ("bn2", bn2));
        net.to(f64);
        using (torch.no_grad())
        {
            bn1.Gamma!.copy_(torch.rand(6, f64, generator: gen) + 0.5);
            bn1.Beta!.copy_(torch.randn(6, f64, generator: gen));
        }

        // some training first, so the moving averages hold something else
        for (int i = 0; i < 3; i++) net.forward(torch.randn(new long[] { 10, 4 }, f64, generator: gen));
        net.eval();
        bn2.train(); // a mixed mode that must come back
        var counterBefore = bn1.NumBatchesTracked!.item<long>();

        var batches = Enumerable.Range(0, 6).Select(_ => torch.randn(new long[] { 8, 4 }, f64, generator: gen) * 2 + 3).ToList();

        // independent: per batch μ_B and biased σ²_B of each BN input, with BN1 normalizing by batch statistics
        var sumMean1 = torch.zeros(6, f64); var sumVar1 = torch.zeros(6, f64);
        var sumMean2 = torch.zeros(3, f64); var sumVar2 = torch.zeros(3, f64);
        using (torch.no_grad())
        {
            foreach (var x in batches)
            {
                var h1 = lin1.forward(x);
                var mu1 = h1.mean(new long[] { 0 });
                var var1 = (h1 - mu1).pow(2).mean(new long[] { 0 });
                var z1 = (h1 - mu1) / (var1 + bn1.Eps).sqrt() * bn1.Gamma! + bn1.Beta!;
                var h2 = lin2.forward(z1.relu());
                var mu2 = h2.mean(new long[] { 0 });
                var var2 = (h2 - mu2).pow(2).mean(new long[] { 0 });
                sumMean1 += mu1; sumVar1 += var1; sumMean2 += mu2; sumVar2 += var2;
            }
        }

        double m = 8, k = batches.Count;
        int n = PopulationStatistics.Recompute(net, batches);
        Assert.Equal(batches.Count, n);

        TestUtil.AssertClose(bn1.RunningMean!, sumMean1 / k, 1e-12, "bn1 E[x]");
        TestUtil.AssertClose(bn1.RunningVar!, sumVar1 / k * (m / (m - 1)), 1e-12, "bn1 Var[x]");
        TestUtil.AssertClose(bn2.RunningMean!, sumMean2 / k, 1e-12, "bn2 E[x]");
        TestUtil.AssertClose(bn2.RunningVar!, sumVar2 / k * (m / (m - 1)), 1e-12, "bn2 Var[x]");

        Assert.False(net.training);
        Assert.False(bn1.training);
        Assert.True(bn2.training);
        Assert.Equal(counterBefore, bn1.NumBatchesTracked!.item<long>());
    }

    [Fact]
    public void TwoDimensionalLayerAsTheWholeNetwork()
    {
        using var scope = torch.NewDisposeScope();
        var gen = new torch.Generator(8);
        var bn = new Bn.MLNet.Normalization.BatchNorm2d(2);
        bn.eval();
        var batches = Enumerable.Range(0, 4).Select(_ => torch.randn(new long[] { 3, 2, 5, 3 }, generator: gen) * 100 + 50).ToList();
        PopulationStatistics.Recompute(bn, batches);
        var all = torch.stack(batches).to(ScalarType.Float64); // B×N×C×H×W
        var mu = all.mean(new long[] { 1, 3, 4 });               // B×C
        var var = all.var(new long[] { 1, 3, 4 }, unbiased: true);  // per-batch unbiased = m/(m−1)·σ²_B
        TestUtil.AssertClose(bn.RunningMean!, mu.mean(new long[] { 0 }), 2e-6, "E[x]");
        TestUtil.AssertClose(bn.RunningVar!, var.mean(new long[] { 0 }), 2e-6, "Var[x]");
        Assert.False(bn.training);
    }

    [Fact]
    public void RejectsNetworkWithoutBatchNormAndEmptyStream()
    {
        using var lin = nn.Linear(2, 2);
        Assert.Throws<ArgumentException>(() => PopulationStatistics.Recompute(lin, new[] { torch.randn(3, 2) }));
        using var bn = new Bn.MLNet.Normalization.BatchNorm1d(2);
        Assert.Contains("empty", Assert.Throws<ArgumentException>(() => PopulationStatistics.Recompute(bn, Array.Empty<Tensor>())).Message);
        Assert.True(bn.training);
    }
}

using Bn.MLNet.Networks;

namespace Bn.MLNet.Tests.Networks;

/// <summary>Inference passes keep every activation within 16 MiB, in passes of equal size that cover every row once.</summary>
public class ForwardPassesTests
{
    [Fact]
    public void TheDefaultNetworkScoresBatchesOf256InTwoPassesOf128()
    {
        NetworkArchitecture a = NetworkArchitecture.Default();
        Assert.Equal(32L * 28 * 28 * 4, ForwardPasses.LargestActivationPerRow(a));   // the first stage's output
        Assert.Equal([(0, 128), (128, 128)], ForwardPasses.Split(256, a));
        Assert.Equal([(0, 100)], ForwardPasses.Split(100, a));
        Assert.Equal([(0, 150), (150, 151)], ForwardPasses.Split(301, a));
    }

    [Theory]
    [InlineData(1, 1, 10, 1)]        // tabular: one pass
    [InlineData(3, 224, 224, 7)]     // 64 channels at 224×224: 12.8 MB a row, one row per pass
    [InlineData(1, 28, 28, 1000)]
    public void PassesCoverEveryRowOnceAndStayWithinTheBudget(int channels, int height, int width, int rows)
    {
        var a = new NetworkArchitecture
        {
            InputChannels = channels, InputHeight = height, InputWidth = width,
            ConvStages = height == 1 ? [] : [new ConvStage(64, 1, true)], HiddenLayers = [16],
        };
        var passes = ForwardPasses.Split(rows, a).ToList();
        Assert.Equal(Enumerable.Range(0, rows), passes.SelectMany(p => Enumerable.Range(p.Start, p.Count)));
        Assert.All(passes, p => Assert.True(p.Count == 1 || p.Count * ForwardPasses.LargestActivationPerRow(a) <= ForwardPasses.ActivationBudgetBytes));
        Assert.True(passes.Max(p => p.Count) - passes.Min(p => p.Count) <= 1);
    }
}

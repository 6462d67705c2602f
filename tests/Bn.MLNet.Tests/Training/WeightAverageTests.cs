using Bn.MLNet.Networks;
using Bn.MLNet.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Tests.Training;

/// <summary>The exponential moving average of the weights (<see cref="TrainerOptions.WeightAveragingDecay"/>) with the real trainer.</summary>
[Collection(TorchGlobalStateCollection.Name)]
public class WeightAverageTests
{
    private static NetworkArchitecture Tiny() => new()
    {
        InputHeight = 12,
        InputWidth = 12,
        ConvStages = new List<ConvStage> { new(4, 1, true) },
        HiddenLayers = new[] { 16 },
        ClassCount = 10,
    };

    private static TrainerOptions Options(double? decay, long steps = 4) => new()
    {
        MaxSteps = steps,
        BatchSize = 16,
        LearningRate = 0.05,
        Threads = 1,
        WeightAveragingDecay = decay,
        ProgressEverySteps = 1,
        RecordPercentiles = false,
    };

    private static BatchNormCnnNetwork Build()
    {
        torch.manual_seed(5);
        return new BatchNormCnnNetwork(Tiny());
    }

    /// <summary>Copies of the float tensors of the network's state dict.</summary>
    private static Dictionary<string, float[]> FloatState(BatchNormCnnNetwork network) =>
        network.state_dict().Where(kv => kv.Value.dtype == ScalarType.Float32)
            .ToDictionary(kv => kv.Key, kv => kv.Value.detach().cpu().data<float>().ToArray());

    private static void AssertClose(Dictionary<string, float[]> expected, Dictionary<string, float[]> actual, double tolerance)
    {
        Assert.Equal(expected.Keys.OrderBy(k => k), actual.Keys.OrderBy(k => k));
        foreach ((string name, float[] e) in expected)
        {
            float[] a = actual[name];
            for (int i = 0; i < e.Length; i++)
            {
                Assert.True(Math.Abs(e[i] - a[i]) <= tolerance * (1 + Math.Abs(e[i])), $"{name}[{i}]: expected {e[i]}, got {a[i]}");
            }
        }
    }

    [Fact]
    public void TheAverageEqualsTheHandComputedOneOverAShortRun()
    {
        const double decay = 0.2;
        using BatchNormCnnNetwork network = Build();
        Dictionary<string, float[]> average = FloatState(network);
        var afterStep = new List<Dictionary<string, float[]>>();
        var progress = new SyncProgress(p =>
        {
            if (!p.EpochCompleted)
            {
                afterStep.Add(FloatState(network));
            }
        });
        TrainingHistory history = new Trainer(Options(decay)).Train(network, SyntheticData.Images(48, seed: 2), progress: progress);

        Assert.Equal(4, afterStep.Count);
        foreach (string key in new[] { "input_mean", "input_std" })
        {
            average[key] = afterStep[0][key]; // set by the pass before training, constant during it
        }

        for (int t = 0; t < afterStep.Count; t++)
        {
            double d = Math.Min(decay, (1.0 + t) / (10.0 + t));
            foreach ((string name, float[] values) in average)
            {
                for (int i = 0; i < values.Length; i++)
                {
                    values[i] = (float)((d * values[i]) + ((1 - d) * afterStep[t][name][i]));
                }
            }
        }

        Assert.True(history.UsedWeightAverage);
        Assert.Null(history.WeightAverageNote);
        AssertClose(average, FloatState(network), 1e-5);
        Assert.NotEqual(afterStep[^1]["logits.weight"], FloatState(network)["logits.weight"]);
    }

    [Fact]
    public void ADecayNearZeroGivesTheRawWeights()
    {
        using BatchNormCnnNetwork raw = Build(), averaged = Build();
        new Trainer(Options(null)).Train(raw, SyntheticData.Images(48, seed: 2));
        TrainingHistory history = new Trainer(Options(1e-12)).Train(averaged, SyntheticData.Images(48, seed: 2));
        Assert.True(history.UsedWeightAverage);
        AssertClose(FloatState(raw), FloatState(averaged), 1e-6);
    }

    [Fact]
    public void ValidationScoresTheAverageWithoutDisturbingTraining()
    {
        using BatchNormCnnNetwork plain = Build(), validated = Build();
        var validation = SyntheticData.Images(32, seed: 9);
        TrainerOptions o = Options(0.9, steps: 6);
        o.RestoreBestWeights = false;
        new Trainer(o).Train(plain, SyntheticData.Images(48, seed: 2));
        TrainingHistory history = new Trainer(o).Train(validated, SyntheticData.Images(48, seed: 2), validation);

        AssertClose(FloatState(plain), FloatState(validated), 1e-6);
        EvaluationResult final = Evaluation.Evaluate(validated, validation);
        Assert.Equal(final.Loss, history.Epochs[^1].ValidationLoss!.Value, 5);
        Assert.Equal(final.Accuracy, history.Epochs[^1].ValidationAccuracy!.Value, 5);
    }

    [Fact]
    public void ANonFiniteAverageIsNotApplied()
    {
        using BatchNormCnnNetwork network = Build();
        using var average = new WeightAverage(network, 0.5);
        Tensor weight = network.state_dict()["logits.weight"];
        using (torch.no_grad())
        {
            using Tensor saved = weight.clone();
            weight.fill_(float.NaN);
            average.Update();
            weight.copy_(saved);
        }

        Dictionary<string, float[]> before = FloatState(network);
        var history = new TrainingHistory();
        Assert.False(average.TryApply(history));
        Assert.False(history.UsedWeightAverage);
        Assert.Contains("logits.weight", history.WeightAverageNote);
        AssertClose(before, FloatState(network), 0);

        average.Update(); // NaN stays NaN: still not applied
        Assert.False(average.TryApply(history));
    }

    [Fact]
    public void AFiniteAverageIsApplied()
    {
        using BatchNormCnnNetwork network = Build();
        using var average = new WeightAverage(network, 0.5);
        Dictionary<string, float[]> start = FloatState(network);
        Tensor weight = network.state_dict()["logits.weight"];
        using (torch.no_grad())
        {
            weight.add_(torch.ones_like(weight));
        }

        average.Update(); // first update: d = min(0.5, 1/10) = 0.1
        var history = new TrainingHistory();
        Assert.True(average.TryApply(history));
        float[] expected = start["logits.weight"].Select(v => (float)((0.1 * v) + (0.9 * (v + 1)))).ToArray();
        AssertClose(new() { ["w"] = expected }, new() { ["w"] = FloatState(network)["logits.weight"] }, 1e-6);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(1.0)]
    [InlineData(-0.5)]
    [InlineData(double.NaN)]
    public void AnInvalidDecayThrowsNamingTheOption(double decay)
    {
        var ex = Assert.Throws<ArgumentException>(() => new Trainer(new TrainerOptions { WeightAveragingDecay = decay }));
        Assert.Equal(nameof(TrainerOptions.WeightAveragingDecay), ex.ParamName);
        ex = Assert.Throws<ArgumentException>(new BatchNormCnnOptions { WeightAveragingDecay = decay }.Validate);
        Assert.Contains("BatchNormCnnOptions.WeightAveragingDecay", ex.Message);
    }

    [Fact]
    public void TheLibraryOptionIsOffByDefaultAndReachesTheTrainer()
    {
        Assert.Null(new BatchNormCnnOptions().WeightAveragingDecay);
        Assert.Null(new TrainerOptions().WeightAveragingDecay);
        Assert.Equal(0.999, new BatchNormCnnOptions { WeightAveragingDecay = 0.999 }.Trainer.WeightAveragingDecay);
    }

    private sealed class SyncProgress(Action<TrainingProgress> action) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => action(value);
    }
}

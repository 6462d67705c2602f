using System.Diagnostics;
using System.Security.Cryptography;
using Bn.MLNet.Data;
using Bn.MLNet.Networks;
using Bn.MLNet.Tests.MLNet;
using Bn.MLNet.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Tests.Training;

/// <summary>
/// A small training job that uses every part of the state a checkpoint holds: dropout, augmentation (crop, flip,
/// erasing), SGD momentum, the weight average, validation with early stopping's best state, BN running statistics.
/// The tests run it in this process and in a child process (<see cref="ChildProcessProgram"/>).
/// </summary>
internal static class CheckpointJob
{
    public const int Epochs = 4;

    public static NetworkArchitecture Architecture() => new()
    {
        InputHeight = 8,
        InputWidth = 8,
        ConvStages = [new ConvStage(6, 1, true)],
        HiddenLayers = [12],
        Dropout = 0.2,
        ClassCount = 3,
    };

    public static TrainerOptions Options(string? directory, int epochs = Epochs) => new()
    {
        Epochs = epochs,
        BatchSize = 16,
        LearningRate = 0.05,
        Threads = 1,
        Seed = 3,
        RandomCropPadding = 1,
        HorizontalFlip = true,
        RandomErasingProbability = 0.3,
        WeightAveragingDecay = 0.9,
        EarlyStoppingPatience = 10,
        ProgressEverySteps = 1,
        CheckpointDirectory = directory,
    };

    public static (BatchSource Train, BatchSource Validation) Data()
    {
        var random = new Random(11);
        float[] Features(int rows) => Enumerable.Range(0, rows * 64).Select(_ => (float)(random.NextDouble() * 255)).ToArray();
        int[] Labels(int rows) => Enumerable.Range(0, rows).Select(i => i % 3).ToArray();
        return (BatchSource.FromArrays(Features(240), Labels(240), 64, seed: 1), BatchSource.FromArrays(Features(48), Labels(48), 64, seed: 1));
    }

    /// <summary>Runs the job (resuming from <paramref name="directory"/> when it holds a checkpoint); returns the history and the final state.</summary>
    public static (TrainingHistory History, Dictionary<string, byte[]> State) Run(string? directory, IProgress<TrainingProgress>? progress = null, CancellationToken token = default, int epochs = Epochs)
    {
        var (train, validation) = Data();
        using var network = new BatchNormCnnNetwork(Architecture(), seed: 5);
        TrainingHistory history = new Trainer(Options(directory, epochs)).Train(network, train, validation, progress, token);
        return (history, network.state_dict().ToDictionary(p => p.Key, p => p.Value.cpu().contiguous().bytes.ToArray()));
    }
}

[Collection(TorchGlobalStateCollection.Name)]
public class CheckpointTests
{
    private static void AssertSameState(Dictionary<string, byte[]> expected, Dictionary<string, byte[]> actual)
    {
        Assert.Equal(expected.Keys, actual.Keys);
        foreach (var (name, bytes) in expected)
            Assert.True(bytes.AsSpan().SequenceEqual(actual[name]), $"'{name}' differs from the uninterrupted run's");
    }

    private static string[] Checkpoints(string dir) => Directory.GetFiles(dir, "*.bnckpt").Select(Path.GetFileName).Order().ToArray()!;

    [Fact]
    public void AKilledRunResumesToExactlyTheUninterruptedModel()
    {
        using var dir = new MLNetTestData.TempDir();
        var (uninterrupted, expected) = CheckpointJob.Run(null);

        // A child process trains with checkpoints and is killed in the middle of the third epoch.
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in new[] { "exec", typeof(ChildProcessProgram).Assembly.Location, "train-checkpoints", dir.Path })
            psi.ArgumentList.Add(a);
        using (var child = Process.Start(psi)!)
        {
            var clock = Stopwatch.StartNew();
            string? line;
            while ((line = child.StandardOutput.ReadLine()) is not null && line != "epoch 3 step 3")
                Assert.True(clock.Elapsed < TimeSpan.FromMinutes(2), "the child did not reach the third epoch in time");
            Assert.NotNull(line);
            child.Kill(entireProcessTree: true);
            child.WaitForExit();
        }

        Assert.Equal(["checkpoint-000001.bnckpt", "checkpoint-000002.bnckpt"], Checkpoints(dir.Path));
        var (resumed, state) = CheckpointJob.Run(dir.Path);
        Assert.Equal(2, resumed.ResumedAfterEpoch);
        Assert.False(resumed.LoadedFinishedRun);
        AssertSameState(expected, state);
        Assert.Equal(uninterrupted.TotalSteps, resumed.TotalSteps);
        Assert.Equal(uninterrupted.Epochs.Select(e => e.TrainLoss), resumed.Epochs.Select(e => e.TrainLoss));
        Assert.Equal(uninterrupted.Epochs.Select(e => e.ValidationAccuracy), resumed.Epochs.Select(e => e.ValidationAccuracy));
        Assert.Equal(uninterrupted.BestEpoch, resumed.BestEpoch);
        Assert.Equal(["checkpoint-000003.bnckpt", "checkpoint-000004.bnckpt"], Checkpoints(dir.Path));   // the newest two are kept

        // The folder now holds the finished run: its model comes back without training.
        var (again, finalState) = CheckpointJob.Run(dir.Path);
        Assert.True(again.LoadedFinishedRun);
        Assert.Equal(CheckpointJob.Epochs, again.ResumedAfterEpoch);
        AssertSameState(expected, finalState);
    }

    [Fact]
    public void CancellingKeepsTheLastCheckpointForAResume()
    {
        using var dir = new MLNetTestData.TempDir();
        var (_, expected) = CheckpointJob.Run(null);
        using var cancel = new CancellationTokenSource();
        var progress = new Callback(r =>
        {
            if (r.EpochCompleted && r.Epoch == 0)
                cancel.Cancel();
        });
        Assert.Throws<OperationCanceledException>(() => CheckpointJob.Run(dir.Path, progress, cancel.Token));
        Assert.Equal(["checkpoint-000001.bnckpt"], Checkpoints(dir.Path));
        var (resumed, state) = CheckpointJob.Run(dir.Path);
        Assert.Equal(1, resumed.ResumedAfterEpoch);
        AssertSameState(expected, state);
    }

    [Fact]
    public void ACheckpointOfOtherSettingsOrADamagedOneIsRefusedAndKept()
    {
        using var dir = new MLNetTestData.TempDir();
        CheckpointJob.Run(dir.Path, epochs: 1);
        string file = Path.Combine(dir.Path, "checkpoint-000001.bnckpt");
        byte[] before = File.ReadAllBytes(file);

        var e = Assert.Throws<InvalidOperationException>(() => CheckpointJob.Run(dir.Path, epochs: 2));
        Assert.Contains(file, e.Message);
        Assert.Contains("trainer.epochs is 1 in the checkpoint and 2 in this run", e.Message);

        File.WriteAllBytes(file, before[..(before.Length / 2)]);
        var d = Assert.Throws<InvalidDataException>(() => CheckpointJob.Run(dir.Path, epochs: 1));
        Assert.Contains($"The checkpoint '{file}' cannot be read", d.Message);
        Assert.Equal(before.Length / 2, new FileInfo(file).Length);   // nothing was written over it
        Assert.Equal(["checkpoint-000001.bnckpt"], Checkpoints(dir.Path));
    }

    private sealed class Callback(Action<TrainingProgress> action) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => action(value);
    }
}

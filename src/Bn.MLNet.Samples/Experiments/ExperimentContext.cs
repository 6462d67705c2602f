using System.Diagnostics;
using Bn.MLNet.Data;
using Bn.MLNet.Networks;
using Bn.MLNet.Samples.Reporting;
using Bn.MLNet.Training;
using TorchSharp;

namespace Bn.MLNet.Samples.Experiments;

/// <summary>Shared data and settings of one <c>experiment</c> invocation.</summary>
public sealed class ExperimentContext
{
    /// <summary>Creates the context; reads the Fashion-MNIST training and test sets once.</summary>
    public ExperimentContext(string outputDirectory, bool quick, string? dataDirectory, int? threads, int seed, Action<string> log)
    {
        OutputDirectory = outputDirectory;
        Quick = quick;
        Threads = threads;
        Seed = seed;
        Log = log;
        Train = FashionMnist.Read(dataDirectory, FashionMnistSplit.Train);
        Test = FashionMnist.Read(dataDirectory, FashionMnistSplit.Test, quick ? 2000 : null);
        Directory.CreateDirectory(outputDirectory);
    }

    /// <summary>Folder that receives report.md, CSV and PNG files.</summary>
    public string OutputDirectory { get; }

    /// <summary>Whether the short smoke-test budget is used.</summary>
    public bool Quick { get; }

    /// <summary>libtorch threads (null: all cores).</summary>
    public int? Threads { get; }

    /// <summary>Base seed of every run.</summary>
    public int Seed { get; }

    /// <summary>Progress log.</summary>
    public Action<string> Log { get; }

    /// <summary>The full training set (60,000 rows).</summary>
    public IdxLabeledImages Train { get; }

    /// <summary>The test set (all 10,000 rows; 2,000 with --quick).</summary>
    public IdxLabeledImages Test { get; }

    /// <summary>Path of a file in the output folder.</summary>
    public string PathOf(string fileName) => Path.Combine(OutputDirectory, fileName);

    /// <summary>A training source over the first <paramref name="rows"/> training rows (all when null).</summary>
    public BatchSource TrainSource(int? rows = null)
    {
        if (rows is null || rows >= Train.Count)
        {
            return new TensorBatchSource(Train.Images.Pixels, Train.Labels, Train.Images.PixelsPerImage, Seed, FashionMnist.ClassCount);
        }

        int n = rows.Value;
        var pixels = new byte[n * Train.Images.PixelsPerImage];
        Array.Copy(Train.Images.Pixels, pixels, pixels.Length);
        return new TensorBatchSource(pixels, Train.Labels[..n], Train.Images.PixelsPerImage, Seed, FashionMnist.ClassCount);
    }

    /// <summary>The test source.</summary>
    public BatchSource TestSource() => new TensorBatchSource(Test.Images.Pixels, Test.Labels, Test.Images.PixelsPerImage, Seed, FashionMnist.ClassCount);

    /// <summary>
    /// Builds a network from <paramref name="architecture"/> (seeded), trains it with <paramref name="options"/> and
    /// evaluates it on the test set every <paramref name="evaluateEverySteps"/> steps.
    /// </summary>
    public ExperimentRun Run(string name, NetworkArchitecture architecture, TrainerOptions options, int evaluateEverySteps, BatchSource? train = null)
    {
        options = options.Clone();
        options.Seed = Seed;
        options.Threads = Threads;
        options.ValidationEverySteps = evaluateEverySteps;
        options.RestoreBestWeights = false;
        torch.manual_seed(Seed);
        var network = new BatchNormCnnNetwork(architecture);
        var clock = Stopwatch.StartNew();
        Log($"{name}: training ({options.MaxSteps?.ToString() ?? options.Epochs + " epochs"}{(options.MaxSteps is null ? "" : " steps")}, batch {options.BatchSize}, lr {options.LearningRate * options.LearningRateMultiplier:g3})");
        TrainingHistory history = new Trainer(options).Train(network, train ?? TrainSource(), TestSource());
        double seconds = clock.Elapsed.TotalSeconds;
        var curve = history.Steps.Where(e => e.ValidationAccuracy is not null).Select(e => ((double)e.Step, e.ValidationAccuracy!.Value))
            .Concat(history.Epochs.Where(e => e.ValidationAccuracy is not null).Select(e => ((double)e.Step, e.ValidationAccuracy!.Value)))
            .GroupBy(p => p.Item1).Select(g => g.First()).OrderBy(p => p.Item1).ToList();
        double final = history.Diverged || curve.Count == 0 ? double.NaN : curve[^1].Item2;
        string outcome = history.Diverged ? $"diverged at step {history.Divergence!.Step}" : $"test accuracy {final:F4}";
        Log($"{name}: {outcome}, {seconds:F0} s");
        return new ExperimentRun(name, network, history, curve, final, seconds);
    }

    /// <summary>Writes every run's test curve as one CSV (run, step, test accuracy).</summary>
    public void SaveCurves(string fileName, IEnumerable<ExperimentRun> runs)
    {
        var csv = new CsvTable("run", "step", "test_accuracy");
        foreach (var run in runs)
        {
            foreach (var (x, y) in run.TestCurve)
            {
                csv.Add(run.Name, x, y);
            }
        }

        csv.Save(PathOf(fileName));
    }
}
